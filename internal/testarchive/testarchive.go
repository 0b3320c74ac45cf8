// Package testarchive builds the archives the tests feed to djship, tar
// and zip entry by entry, hostile ones included, reads release tarballs
// back, and lists folder trees to see what unpacking changed. The release
// side's tests (the inspection) and the host side's (the unpack step)
// share it.
package testarchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mholt/archives"
)

// ManifestName is release.ManifestName, which this package cannot import
// (the release package's tests import this one); a release test checks
// that the two agree.
const ManifestName = "DJSHIP-MANIFEST.json"

// Entry is one entry of an archive a test builds.
type Entry struct {
	Name   string
	Type   byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeXGlobalHeader
	Target string
	Body   string
	Mode   int64
	// Zip only: the maker (3 Unix when 0) and extra fields.
	Maker uint16
	Extra []byte
	// PAX holds the records of a global header.
	PAX map[string]string
}

// File is a regular file entry.
func File(name, body string) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Body: body}
}

// Dir is a folder entry; its name ends with /.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Link is a symbolic link entry.
func Link(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Target: target}
}

// Hardlink is a hard link entry to the entry target.
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Target: target}
}

// Tar is an uncompressed tar of the entries, in their order.
func Tar(t testing.TB, entries []Entry) []byte {
	t.Helper()
	b, err := TryTar(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TryTar is Tar for entries Go may refuse to write (a NUL in a name).
func TryTar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
			if e.Type == tar.TypeDir || e.Type == tar.TypeSymlink {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Target, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.Type == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if e.Type == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: e.PAX}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %q: %w", e.Name, err)
		}
		if e.Type == tar.TypeReg {
			tw.Write([]byte(e.Body))
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Archive is a zip or a tar of the entries, as name says.
func Archive(t testing.TB, name string, entries []Entry) []byte {
	if strings.HasSuffix(name, ".zip") {
		return Zip(t, entries)
	}
	return Tar(t, entries)
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(b)
	gz.Close()
	return buf.Bytes()
}

// Zip is a zip of the entries: folders end with /, links hold their
// target, made on Unix unless the entry names another maker.
func Zip(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		maker := e.Maker
		if maker == 0 {
			maker = 3
		}
		mode := uint32(0o100644)
		body := e.Body
		switch e.Type {
		case tar.TypeDir:
			mode = 0o040755
		case tar.TypeSymlink:
			mode, body = 0o120777, e.Target
		}
		if e.Mode != 0 {
			mode = mode&^0o7777 | uint32(e.Mode)
		}
		h := &zip.FileHeader{Name: e.Name, Method: zip.Store, CreatorVersion: maker<<8 | 20, ExternalAttrs: mode << 16, Extra: e.Extra,
			CRC32: crc32.ChecksumIEEE([]byte(body)), CompressedSize64: uint64(len(body)), UncompressedSize64: uint64(len(body))}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatalf("zip entry %q: %v", e.Name, err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// UnicodePath is an Info-ZIP Unicode path extra field naming the entry
// name as path.
func UnicodePath(name, path string) []byte {
	body := []byte{1}
	body = binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE([]byte(name)))
	body = append(body, path...)
	extra := binary.LittleEndian.AppendUint16(nil, 0x7075)
	extra = binary.LittleEndian.AppendUint16(extra, uint16(len(body)))
	return append(extra, body...)
}

// Manifest is the first entry of a release tarball of project.
func Manifest(project string) Entry {
	return File(ManifestName, fmt.Sprintf(`{"project": %q, "revision": "r1"}`, project))
}

// WriteRelease writes a .tar.gz release of project holding the entries
// after its manifest, and returns its path.
func WriteRelease(t testing.TB, dir, project string, entries []Entry) string {
	t.Helper()
	p := filepath.Join(dir, project+"-r1.tar.gz")
	if err := os.WriteFile(p, Gzip(Tar(t, append([]Entry{Manifest(project)}, entries...))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Chain is d1/d2/.../d10/l1 -> ../../.. (which leads to d1/.../d7) and
// out -> d1/.../d10/l1/ followed by 7+ups times ../ and rest, all below
// prefix: inside the tree to the eye (the ..s and the folders before
// them even out), but ups folders above the top once l1 is followed.
// Chain("", 3, "tmp/x") is
// out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x.
func Chain(prefix string, ups int, rest string) []Entry {
	var entries []Entry
	dir := prefix
	for i := 1; i <= 10; i++ {
		dir = path.Join(dir, fmt.Sprintf("d%d", i))
		entries = append(entries, Dir(dir+"/"))
	}
	deep := strings.TrimPrefix(strings.TrimPrefix(dir, prefix), "/")
	entries = append(entries,
		Link(dir+"/l1", "../../.."),
		Link(path.Join(prefix, "out"), deep+"/l1/"+strings.Repeat("../", 7+ups)+rest))
	return entries
}

// Member is an entry read back from a tarball.
type Member struct {
	Header *tar.Header
	Body   string
}

// Read reads a compressed tarball whole, by entry name.
func Read(t testing.TB, p string) map[string]Member {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, stream, err := archives.Identify(context.Background(), p, f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	compressed, ok := format.(archives.CompressedArchive)
	if !ok || compressed.Compression == nil {
		t.Fatalf("%s is not a compressed tarball", p)
	}
	r, err := compressed.Compression.OpenReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]Member{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = Member{Header: h, Body: string(body)}
	}
	return out
}

// Names are the members' names, sorted.
func Names(members map[string]Member) []string { return slices.Sorted(maps.Keys(members)) }

// Snapshot lists a folder tree with what each entry is, so that two
// snapshots differ when anything in it was created, changed or removed.
// The folders skip are left out.
func Snapshot(t testing.TB, root string, skip ...string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+": "+err.Error())
			return nil
		}
		for _, s := range skip {
			if p == s {
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v", p, info.Mode())
		switch {
		case info.IsDir():
			// What a folder holds is listed; its times change with that.
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			line += fmt.Sprintf(" %d %s %s", info.Size(), info.ModTime().Format(time.RFC3339Nano), hex.EncodeToString(sum[:8]))
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			line += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
			if !info.IsDir() {
				line += fmt.Sprintf(" links=%d", st.Nlink)
			}
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
