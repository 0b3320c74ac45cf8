// Package fileutil holds the file chores several packages share: writing
// a file atomically, hashing content, and opening a file inside a folder
// without following symbolic links.
package fileutil

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic writes a file through a temporary name in the same folder,
// synced, then renamed into place: a reader sees the old file or the new
// one, never half of it. The temporary file is a new one (O_EXCL), its
// mode set through the open file, and the rename replaces whatever stands
// at dest, a symbolic link included, without following it: nothing is
// written through a link planted at either name. Nothing is left behind
// when write fails.
func WriteAtomic(dest string, mode fs.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

// SHA256 hashes what r yields, hex-encoded.
func SHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SHA256File hashes a file, hex-encoded.
func SHA256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return SHA256(f)
}
