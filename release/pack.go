package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/djship/djship/internal/fileutil"
	"github.com/djship/djship/sites"
	"github.com/mholt/archives"
	"golang.org/x/sys/unix"
)

// errSourceChanged says what to do when the source changed while mage
// release read it.
var errSourceChanged = errors.New("something wrote to the source while mage release read it: run mage release again once nothing does")

// ManifestName is the release manifest's name at the top of every tarball.
const ManifestName = "DJSHIP-MANIFEST.json"

// entry is one file, folder or symbolic link of a source tree.
type entry struct {
	rel    string // slash-separated path from the top
	mode   fs.FileMode
	link   string // symbolic link target
	sha256 string // content hash of a regular file
	size   int64  // a regular file's size: the bytes the scan read
}

// tree is the packaged content of a source: entries sorted by path,
// what was left out and why, and the credentials source.include puts in.
// root is the source folder, open from the scan to the end of the write:
// every file is opened below it, through no symbolic link.
type tree struct {
	root        *os.File
	entries     []entry
	leftOut     []LeftOut
	credentials []Credential
	// unscanned lists the packaged files the credential scan could not
	// read whole, and why.
	unscanned []LeftOut
}

// close closes the source folder.
func (t *tree) close() {
	if t.root != nil {
		t.root.Close()
	}
}

// scanTree walks dir and returns what goes into the tarball. It refuses
// symbolic links that are absolute or lead out of the tree, special files,
// anything that would shadow the manifest, and credentials (found by name
// and by content, in the same read that hashes each file) that
// source.include does not name, listing every offender. It follows no
// symbolic link: each folder and file is opened below dir with none in
// its path, and is what it was seen to be when listed. The caller closes
// the tree.
func scanTree(ctx context.Context, dir string, f filter) (*tree, error) {
	root, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", dir, err)
	}
	w := &treeWalk{ctx: ctx, f: f, t: &tree{root: root}}
	if err := w.folder("."); err != nil {
		root.Close()
		return nil, fmt.Errorf("read source %s: %w", dir, err)
	}
	t := w.t
	sort.Slice(t.entries, func(i, j int) bool { return t.entries[i].rel < t.entries[j].rel })
	refused := append(w.refused, linkProblem(t.entries)...)
	credErr := credentialsError(dir, w.found)
	if len(refused) > 0 {
		root.Close()
		return nil, errors.Join(fmt.Errorf("source %s has files that cannot go into a release:\n  %s\nmake links relative and inside the source, or leave the files out with source.exclude", dir, strings.Join(refused, "\n  ")), credErr)
	}
	if credErr != nil {
		root.Close()
		return nil, credErr
	}
	return t, nil
}

// treeWalk is one scan of a source tree.
type treeWalk struct {
	ctx     context.Context
	f       filter
	t       *tree
	refused []string
	found   []Credential
}

// folder scans the folder rel ("." for the top) and what is below it,
// names in order.
func (w *treeWalk) folder(rel string) error {
	d, err := fileutil.OpenBeneath(w.t.root, rel, unix.O_DIRECTORY)
	if err != nil {
		return changedError(w.t.root, rel, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		if err := w.visit(int(d.Fd()), name, p); err != nil {
			return err
		}
	}
	return nil
}

// visit scans the entry name of the open folder dirfd, at rel.
func (w *treeWalk) visit(dirfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: rel, Err: err}
	}
	mode := modeOf(st.Mode)
	if why := w.f.leftOutBy(rel, mode.IsDir()); why != "" {
		if mode.IsDir() {
			rel += "/"
		}
		w.t.leftOut = append(w.t.leftOut, LeftOut{Path: rel, Reason: why})
		return nil
	}
	if rel == ManifestName {
		w.refused = append(w.refused, fmt.Sprintf("%s: djship writes this file into every release; rename yours", rel))
		return nil
	}
	e := entry{rel: rel}
	switch {
	case mode.IsDir():
		e.mode = fs.ModeDir | 0o755
		w.t.entries = append(w.t.entries, e)
		return w.folder(rel)
	case mode&fs.ModeSymlink != 0:
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: rel, Err: err}
		}
		// Judged with the whole tree, in scanTree: a link may lead out
		// only through other links.
		e.mode, e.link = fs.ModeSymlink|0o777, filepath.ToSlash(target)
	case mode.IsRegular():
		file, info, err := w.t.openFile(rel)
		if err != nil {
			return err
		}
		sum, size, holds, limits, err := scanFileLimits(file, rel)
		file.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		if limits != "" {
			w.t.unscanned = append(w.t.unscanned, LeftOut{Path: rel, Reason: limits})
		}
		e.mode = 0o644
		if info.Mode()&0o111 != 0 {
			e.mode = 0o755
		}
		e.sha256, e.size = sum, size
		if holds != "" {
			c := Credential{Path: rel, Holds: holds, Include: w.f.includedBy(rel, false)}
			w.found = append(w.found, c)
			if c.Include == "" {
				return nil
			}
			w.t.credentials = append(w.t.credentials, c)
		}
	default:
		w.refused = append(w.refused, fmt.Sprintf("%s: a %s cannot be packaged", rel, kindOf(mode)))
		return nil
	}
	w.t.entries = append(w.t.entries, e)
	return nil
}

// modeOf is the type of a stat mode as an fs.FileMode, with its
// permission bits.
func modeOf(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// readlinkat reads the symbolic link name of the open folder dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openFile opens the regular file rel of the tree for reading, with no
// symbolic link followed in any component of its path, and returns it
// with what fstat says of it. Anything but a regular file standing there
// now, or a link in its path, is an error saying the tree changed.
func (t *tree) openFile(rel string) (*os.File, fs.FileInfo, error) {
	// O_NONBLOCK: a named pipe put in the file's place must not block.
	f, err := fileutil.OpenBeneath(t.root, rel, unix.O_NONBLOCK)
	if err != nil {
		return nil, nil, changedError(t.root, rel, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s changed while packaging: it is no longer a regular file (%w)", rel, errSourceChanged)
	}
	return f, info, nil
}

// changedError explains why rel, seen in the tree, could not be opened
// below root: a symbolic link now stands at its name or in its path (the
// tree changed), or another error.
func changedError(root *os.File, rel string, err error) error {
	if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s changed while packaging: it is gone (%w)", rel, errSourceChanged)
		}
		return err
	}
	if dir := path.Dir(rel); dir != "." {
		parent, perr := fileutil.OpenBeneath(root, dir, unix.O_DIRECTORY)
		if perr != nil {
			return fmt.Errorf("%s changed while packaging: a symbolic link stands in its path (%w)", rel, errSourceChanged)
		}
		parent.Close()
	}
	return fmt.Errorf("%s changed while packaging: it is no longer a regular file (%w)", rel, errSourceChanged)
}

// linkProblem judges the packaged tree as the host will unpack it: every
// link followed through the others as the kernel would (a link that is
// inside to the eye may lead out through another), absolute links, loops,
// and names that tar and unzip read differently. It returns one line per
// offending entry.
func linkProblem(entries []entry) []string {
	tree := newLinkTree("source tree")
	j := tree.archive(nil, 0, "")
	for i, e := range entries {
		te := treeEntry{name: e.rel, kind: kindFile, index: i}
		switch {
		case e.mode.IsDir():
			te.kind = kindDir
		case e.mode&fs.ModeSymlink != 0:
			te.kind, te.target = kindLink, e.link
		}
		j.add(te)
	}
	return append(j.problems, tree.check()...)
}

func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

func fileSHA256(p string) (string, error) { return fileutil.SHA256File(p) }

// listHash is the sha256 of the file list: every path with its type, mode
// and content hash or link target. Two trees with the same list hash
// package to the same tarball.
func (t *tree) listHash() string {
	h := sha256.New()
	for _, e := range t.entries {
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00%s\n", e.rel, e.mode, e.sha256, e.link)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// files counts the regular files of the tree.
func (t *tree) files() int {
	n := 0
	for _, e := range t.entries {
		if e.mode.IsRegular() {
			n++
		}
	}
	return n
}

// archiveFormat is one tarball format: how mage release compresses it
// and the flag with which GNU tar unpacks it on the host.
type archiveFormat struct {
	ext         string
	compression archives.Compression
	tarFlag     string
}

// archiveFormats are the tarball formats djship writes and unpacks; the
// site file may name those of sites.ArchiveExtensions.
var archiveFormats = []archiveFormat{
	{".tar.gz", archives.Gz{}, "-z"},
	{".tgz", archives.Gz{}, "-z"},
	{".tar.bz2", archives.Bz2{}, "-j"},
	{".tar.zst", archives.Zstd{}, "--zstd"},
	{".tar.xz", archives.Xz{}, "-J"},
}

// formatOf is the format of a tarball, from its name.
func formatOf(name string) (archiveFormat, error) {
	for _, f := range archiveFormats {
		if strings.HasSuffix(name, f.ext) {
			return f, nil
		}
	}
	return archiveFormat{}, fmt.Errorf("%s: unknown archive format; use %s", name, strings.Join(sites.ArchiveExtensions, ", "))
}

// compression picks the compressor from the tarball's name.
func compression(name string) (archives.Compression, error) {
	f, err := formatOf(name)
	return f.compression, err
}

// writeArchive writes the manifest and the tree to w as a compressed tar
// that depends only on the content: entries in path order, one fixed
// time, owner 0:0 without names, normalised modes. Each file is read
// again as the scan read it (see tree.openFile) and must have the
// content the scan hashed, or the write fails.
func writeArchive(ctx context.Context, w io.Writer, name string, t *tree, manifest []byte, mtime time.Time) error {
	comp, err := compression(name)
	if err != nil {
		return err
	}
	files := []archives.FileInfo{{
		FileInfo:      fixedInfo{name: ManifestName, size: int64(len(manifest)), mode: 0o644, mtime: mtime},
		NameInArchive: ManifestName,
		Open:          func() (fs.File, error) { return memFile{bytes.NewReader(manifest)}, nil },
	}}
	// changed is the first file found changed since the scan. The
	// archiver copies exactly the size given and drops the error of a
	// read that ends a file (io.CopyN) and of Close, so it is kept here.
	var changed error
	for _, e := range t.entries {
		fi := fixedInfo{name: path.Base(e.rel), mode: e.mode, size: e.size, mtime: mtime}
		nameInArchive := e.rel
		if e.mode.IsDir() {
			nameInArchive += "/"
		}
		files = append(files, archives.FileInfo{
			FileInfo:      fi,
			NameInArchive: nameInArchive,
			LinkTarget:    e.link,
			Open: func() (fs.File, error) {
				if changed != nil {
					return nil, changed
				}
				return t.openScanned(e, &changed)
			},
		})
	}
	format := archives.CompressedArchive{
		Compression: comp,
		Archival:    archives.Tar{NumericUIDGID: true},
	}
	err = format.Archive(ctx, w, files)
	if changed != nil {
		return changed
	}
	return err
}

// openScanned opens the regular file of e for the tarball: its content
// is hashed as it is read and, at its last byte, must be what the scan
// hashed. A file found changed is also recorded in *changed.
func (t *tree) openScanned(e entry, changed *error) (fs.File, error) {
	f, info, err := t.openFile(e.rel)
	if err == nil && info.Size() != e.size {
		f.Close()
		err = changedContent(e.rel)
	}
	if err != nil {
		*changed = err
		return nil, err
	}
	return &scannedFile{f: f, e: e, left: e.size, h: sha256.New(), changed: changed}, nil
}

// changedContent is the error of a file whose content is not what the
// scan hashed.
func changedContent(rel string) error {
	return fmt.Errorf("%s changed while packaging; nothing was written (%w)", rel, errSourceChanged)
}

// scannedFile reads a file of the tree for the tarball: at most the
// bytes the scan read, hashed on the way; the read that ends them fails
// when their hash is not the scan's, and so does an end of file before
// them, each recording the error in *changed too. It does not embed the
// file, whose WriteTo would bypass Read.
type scannedFile struct {
	f       *os.File
	e       entry
	left    int64
	h       hash.Hash
	changed *error
}

func (s *scannedFile) Read(p []byte) (int, error) {
	if s.left == 0 {
		if hex.EncodeToString(s.h.Sum(nil)) != s.e.sha256 {
			return 0, s.fail()
		}
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.f.Read(p)
	s.h.Write(p[:n])
	s.left -= int64(n)
	switch {
	case s.left == 0 && hex.EncodeToString(s.h.Sum(nil)) != s.e.sha256:
		return n, s.fail()
	case s.left > 0 && errors.Is(err, io.EOF):
		return n, s.fail()
	case s.left == 0 && errors.Is(err, io.EOF):
		err = nil // the next Read says EOF
	}
	return n, err
}

// fail records and returns the error of a file changed since the scan.
func (s *scannedFile) fail() error {
	err := changedContent(s.e.rel)
	if *s.changed == nil {
		*s.changed = err
	}
	return err
}

func (s *scannedFile) Stat() (fs.FileInfo, error) { return s.f.Stat() }
func (s *scannedFile) Close() error               { return s.f.Close() }

// fixedInfo is the file information written into the tarball: no owner,
// one time for every entry.
type fixedInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (f fixedInfo) Name() string       { return f.name }
func (f fixedInfo) Size() int64        { return f.size }
func (f fixedInfo) Mode() fs.FileMode  { return f.mode }
func (f fixedInfo) ModTime() time.Time { return f.mtime }
func (f fixedInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fixedInfo) Sys() any           { return nil }

// memFile serves in-memory content as an fs.File.
type memFile struct{ *bytes.Reader }

func (memFile) Stat() (fs.FileInfo, error) { return nil, fs.ErrInvalid }
func (memFile) Close() error               { return nil }
