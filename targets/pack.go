package targets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
)

// ManifestName is the release manifest's name at the top of every tarball.
const ManifestName = "DJSHIP-MANIFEST.json"

// entry is one file, folder or symbolic link of a source tree.
type entry struct {
	rel    string // slash-separated path from the top
	disk   string // path on disk
	mode   fs.FileMode
	link   string // symbolic link target
	sha256 string // content hash of a regular file
}

// tree is the packaged content of a source: entries sorted by path,
// what was left out and why, and the credentials source.include puts in.
type tree struct {
	entries     []entry
	leftOut     []LeftOut
	credentials []Credential
}

// scanTree walks dir and returns what goes into the tarball. It refuses
// symbolic links that are absolute or lead out of the tree, special files,
// a file that would shadow the manifest, and credentials (found by name
// and by content, in the same read that hashes each file) that
// source.include does not name, listing every offender.
func scanTree(ctx context.Context, dir string, f filter) (*tree, error) {
	t := &tree{}
	var refused []string
	var found []Credential
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if why := f.leftOutBy(rel, d.IsDir()); why != "" {
			name := rel
			if d.IsDir() {
				name += "/"
			}
			t.leftOut = append(t.leftOut, LeftOut{Path: name, Reason: why})
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, disk: p}
		switch mode := info.Mode(); {
		case mode.IsDir():
			e.mode = fs.ModeDir | 0o755
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			// Judged with the whole tree, below: a link may lead out only
			// through other links.
			e.mode, e.link = fs.ModeSymlink|0o777, filepath.ToSlash(target)
		case mode.IsRegular():
			if rel == ManifestName {
				refused = append(refused, fmt.Sprintf("%s: djship writes this file into every release; rename yours", rel))
				return nil
			}
			e.mode = 0o644
			if mode&0o111 != 0 {
				e.mode = 0o755
			}
			sum, holds, err := hashAndScan(p, rel)
			if err != nil {
				return err
			}
			e.sha256 = sum
			if holds != "" {
				c := Credential{Path: rel, Holds: holds, Include: f.includedBy(rel, false)}
				found = append(found, c)
				if c.Include == "" {
					return nil
				}
				t.credentials = append(t.credentials, c)
			}
		default:
			refused = append(refused, fmt.Sprintf("%s: a %s cannot be packaged", rel, kindOf(mode)))
			return nil
		}
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", dir, err)
	}
	sort.Slice(t.entries, func(i, j int) bool { return t.entries[i].rel < t.entries[j].rel })
	refused = append(refused, linkProblem(t.entries)...)
	credErr := credentialsError(dir, found)
	if len(refused) > 0 {
		return nil, errors.Join(fmt.Errorf("source %s has files that cannot go into a release:\n  %s\nmake links relative and inside the source, or leave the files out with source.exclude", dir, strings.Join(refused, "\n  ")), credErr)
	}
	if credErr != nil {
		return nil, credErr
	}
	return t, nil
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
// time, owner 0:0 without names, normalised modes.
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
	for _, e := range t.entries {
		e := e
		fi := fixedInfo{name: path.Base(e.rel), mode: e.mode, mtime: mtime}
		if e.mode.IsRegular() {
			st, err := os.Stat(e.disk)
			if err != nil {
				return err
			}
			fi.size = st.Size()
		}
		nameInArchive := e.rel
		if e.mode.IsDir() {
			nameInArchive += "/"
		}
		files = append(files, archives.FileInfo{
			FileInfo:      fi,
			NameInArchive: nameInArchive,
			LinkTarget:    e.link,
			Open:          func() (fs.File, error) { return os.Open(e.disk) },
		})
	}
	format := archives.CompressedArchive{
		Compression: comp,
		Archival:    archives.Tar{NumericUIDGID: true},
	}
	return format.Archive(ctx, w, files)
}

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
