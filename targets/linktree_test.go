package targets

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/djship/djship/sites"
)

// testEntry is one entry of an archive a test builds.
type testEntry struct {
	name   string
	typ    byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeXGlobalHeader
	target string
	body   string
	mode   int64
	// Zip only: the maker (3 Unix when 0) and extra fields.
	maker uint16
	extra []byte
	// pax holds the records of a global header.
	pax map[string]string
}

func entryFile(name, body string) testEntry {
	return testEntry{name: name, typ: tar.TypeReg, body: body}
}
func entryDir(name string) testEntry { return testEntry{name: name, typ: tar.TypeDir} }
func entryLink(name, target string) testEntry {
	return testEntry{name: name, typ: tar.TypeSymlink, target: target}
}
func entryHardlink(name, target string) testEntry {
	return testEntry{name: name, typ: tar.TypeLink, target: target}
}

// tarData is an uncompressed tar of the entries, in their order.
func tarData(t testing.TB, entries []testEntry) []byte {
	t.Helper()
	b, err := tryTarData(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tryTarData is tarData for entries Go may refuse to write (a NUL in a
// name).
func tryTarData(entries []testEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir || e.typ == tar.TypeSymlink {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.target, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: e.pax}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %q: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// archiveData is a zip or a tar of the entries, as name says.
func archiveData(t testing.TB, name string, entries []testEntry) []byte {
	if strings.HasSuffix(name, ".zip") {
		return zipData(t, entries)
	}
	return tarData(t, entries)
}

func gzipData(b []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(b)
	gz.Close()
	return buf.Bytes()
}

// zipData is a zip of the entries: folders end with /, links hold their
// target, made on Unix unless the entry names another maker.
func zipData(t testing.TB, entries []testEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		maker := e.maker
		if maker == 0 {
			maker = 3
		}
		mode := uint32(0o100644)
		body := e.body
		switch e.typ {
		case tar.TypeDir:
			mode = 0o040755
		case tar.TypeSymlink:
			mode, body = 0o120777, e.target
		}
		if e.mode != 0 {
			mode = mode&^0o7777 | uint32(e.mode)
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Store, CreatorVersion: maker<<8 | 20, ExternalAttrs: mode << 16, Extra: e.extra,
			CRC32: crc32.ChecksumIEEE([]byte(body)), CompressedSize64: uint64(len(body)), UncompressedSize64: uint64(len(body))}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatalf("zip entry %q: %v", e.name, err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unicodePath is an Info-ZIP Unicode path extra field naming the entry
// name as path.
func unicodePath(name, path string) []byte {
	body := []byte{1}
	body = binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE([]byte(name)))
	body = append(body, path...)
	extra := binary.LittleEndian.AppendUint16(nil, 0x7075)
	extra = binary.LittleEndian.AppendUint16(extra, uint16(len(body)))
	return append(extra, body...)
}

// manifest is the first entry of a release tarball of project.
func manifest(project string) testEntry {
	return entryFile(ManifestName, fmt.Sprintf(`{"project": %q, "revision": "r1"}`, project))
}

// writeRelease writes a .tar.gz release of project holding the entries
// after its manifest, and returns its path.
func writeRelease(t testing.TB, dir, project string, entries []testEntry) string {
	t.Helper()
	p := filepath.Join(dir, project+"-r1.tar.gz")
	if err := os.WriteFile(p, gzipData(tarData(t, append([]testEntry{manifest(project)}, entries...))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// chain is d1/d2/.../d10/l1 -> ../../.. (which leads to d1/.../d7) and
// out -> d1/.../d10/l1/ followed by 7+ups times ../ and rest: inside the
// tree to the eye (the ..s and the folders before them even out), but
// ups folders above the top once l1 is followed. chain(3, "tmp/x") is
// out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x.
func chain(prefix string, ups int, rest string) []testEntry {
	var entries []testEntry
	dir := prefix
	for i := 1; i <= 10; i++ {
		dir = path.Join(dir, fmt.Sprintf("d%d", i))
		entries = append(entries, entryDir(dir+"/"))
	}
	deep := strings.TrimPrefix(strings.TrimPrefix(dir, prefix), "/")
	entries = append(entries,
		entryLink(dir+"/l1", "../../.."),
		entryLink(path.Join(prefix, "out"), deep+"/l1/"+strings.Repeat("../", 7+ups)+rest))
	return entries
}

func django(folder string, archives ...sites.Deflate) sites.Settings {
	return sites.Settings{Django: sites.Django{SourceFolder: folder, ArchivesToDeflate: archives}}
}

// TestInspectTarballLinkTree judges tarballs, with the archives the site
// unpacks from them, as one tree: what is inside to the eye but leads
// out once the links are followed is refused, with the entry named.
func TestInspectTarballLinkTree(t *testing.T) {
	vendor := sites.Deflate{Archive: "vendor.zip", Into: "static"}
	innerTar := sites.Deflate{Archive: "vendor.tar", Into: "static"}
	var tooLong, longest []testEntry
	for i := 0; i < 41; i++ {
		tooLong = append(tooLong, entryLink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
		if i < 39 {
			longest = append(longest, entryLink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
		}
	}
	tooLong = append(tooLong, entryLink("l41", "."))
	longest = append(longest, entryLink("l39", "."))
	cases := []struct {
		name     string
		entries  []testEntry
		settings sites.Settings
		inner    map[string][]testEntry // archives in the tarball, by name
		want     []string               // "" accepts
	}{
		{name: "a chain inside to the eye that leads out", entries: chain("", 3, "tmp/x"),
			want: []string{"out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x: the link leads out of the release once d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 -> ../../.. is followed"}},
		{name: "an archive unpacked into the chain", entries: append(chain("", 3, "etc/cron.d"), entryFile("manage.py", "")),
			settings: django(".", sites.Deflate{Archive: "vendor.tar", Into: "out"}),
			inner:    map[string][]testEntry{"vendor.tar": {entryFile("job", "* * * * * root id")}},
			want:     []string{"vendor.tar: into out: lands out of the release once d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 -> ../../.. is followed"}},
		{name: "a chain inside an archive", settings: django(".", innerTar),
			inner: map[string][]testEntry{"vendor.tar": chain("", 2, "x")},
			want:  []string{"vendor.tar: out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../x: the link leads out of the release"}},
		{name: "a loop", entries: []testEntry{entryLink("a", "b"), entryLink("b", "a")},
			want: []string{"a -> b: a loop of links", "b -> a: a loop of links"}},
		{name: "more than 40 links in a row", entries: tooLong, want: []string{"l0 -> l1: a loop of links, or a chain of more than 40"}},
		{name: "40 links in a row", entries: longest, want: []string{""}},
		{name: "a link to a link that leads out", entries: []testEntry{entryDir("a/"), entryLink("a/up", ".."), entryLink("b", "a/up/..")},
			want: []string{"b -> a/up/..: the link leads out of the release once a/up -> .. is followed"}},
		{name: "an entry below a link that leads out", entries: []testEntry{entryLink("up", ".."), entryFile("up/x", "")},
			want: []string{"up/x: lands out of the release"}},
		{name: "two entries with one name", entries: []testEntry{entryFile("a", "1"), entryFile("./a", "2")},
			want: []string{"./a: a second entry with this name"}},
		{name: "a backslash", entries: []testEntry{entryFile(`a\b`, "")}, want: []string{`a\b: a name with a backslash`}},
		{name: "a control character", entries: []testEntry{entryFile("a\nb", "")}, want: []string{`"a\nb": a name with a control character`}},
		{name: "a NUL in a zip name", settings: django(".", vendor),
			inner: map[string][]testEntry{"vendor.zip": {entryFile("a\x00b", "")}},
			want:  []string{`vendor.zip: "a\x00b": a name with a control character`}},
		{name: ".. inside a name", entries: []testEntry{entryDir("a/"), entryFile("a/../b", "")}, want: []string{"a/../b: a name with .. in it"}},
		{name: "a hard link to a later file", entries: []testEntry{entryHardlink("h", "f"), entryFile("f", "")},
			want: []string{"h => f: a hard link to f, which is not an earlier regular file of the archive"}},
		{name: "a hard link to a folder", entries: []testEntry{entryDir("d/"), entryHardlink("h", "d")},
			want: []string{"h => d: a hard link to d, which is not an earlier regular file"}},
		{name: "a hard link to a link", entries: []testEntry{entryFile("f", ""), entryLink("l", "f"), entryHardlink("h", "l")},
			want: []string{"h => l: a hard link to l, which is not an earlier regular file"}},
		{name: "a hard link to an earlier file", entries: []testEntry{entryFile("f", "x"), entryHardlink("h", "f"), entryHardlink("h2", "./h")}, want: []string{""}},
		{name: "a global header that renames every entry", entries: []testEntry{{typ: tar.TypeXGlobalHeader, pax: map[string]string{"path": "../../etc/cron.d/x"}}, entryFile("a", "")},
			want: []string{"a global pax header that changes every entry after it (path)"}},
		{name: "a global comment, as git archive writes", entries: []testEntry{{typ: tar.TypeXGlobalHeader, pax: map[string]string{"comment": "0123abc"}}, entryFile("a", "")},
			want: []string{""}},
		{name: "a zip link made on VMS", settings: django(".", vendor),
			inner: map[string][]testEntry{"vendor.zip": {{name: "l", typ: tar.TypeSymlink, target: "../../../etc", maker: 2}}},
			want:  []string{"vendor.zip: l -> ../../../etc: the link leads out of the release"}},
		{name: "a zip entry with a second, Unicode name", settings: django(".", vendor),
			inner: map[string][]testEntry{"vendor.zip": {{name: "safe.css", typ: tar.TypeReg, extra: unicodePath("safe.css", "../../../etc/cron.d/x")}}},
			want:  []string{"vendor.zip: safe.css: a second, Unicode name"}},
		{name: "an archive entry through a link of the tarball", entries: []testEntry{entryDir("static/"), entryLink("static/v", "../vendor"), entryDir("vendor/")},
			settings: django(".", vendor), inner: map[string][]testEntry{"vendor.zip": {entryFile("v/x.css", "")}},
			want: []string{"vendor.zip: v/x.css: goes through the link static/v -> ../vendor of the release, which unpacking never follows"}},
		{name: "an archive named through a link", entries: []testEntry{entryLink("lib", "third"), entryDir("third/")},
			settings: django(".", sites.Deflate{Archive: "lib/v.zip", Into: "static"}),
			inner:    map[string][]testEntry{"third/v.zip": {entryFile("../x", "")}},
			want:     []string{"lib/v.zip: ../x: climbs out of the release with .."}},
		{name: "a source folder through a link that leads out", entries: []testEntry{entryLink("app", "../elsewhere")},
			settings: django("app"), want: []string{"django.source_folder app: lands out of the release"}},
		{name: "links inside, to links, and dangling", entries: []testEntry{
			entryLink("a", "b"), entryLink("b", "c/"), entryDir("c/"), entryFile("c/f", ""), entryLink("broken.css", "missing.css"),
			entryDir("d/"), entryLink("d/up", ".."), entryLink("e", "d/up/c/../a"), entryLink("m", "missing/../c")}, want: []string{""}},
		{name: "an archive into a folder reached through a link", entries: []testEntry{entryLink("static", "notes/static"), entryDir("notes/static/")},
			settings: django(".", vendor), inner: map[string][]testEntry{"vendor.zip": {entryDir("vendor/"), entryFile("vendor/x.css", ""), entryLink("vendor/y.css", "x.css")}},
			want: []string{""}},
		{name: "an archive that replaces a file of the tarball", entries: []testEntry{entryDir("static/"), entryFile("static/x.css", "old")},
			settings: django(".", vendor), inner: map[string][]testEntry{"vendor.zip": {entryFile("x.css", "new")}}, want: []string{""}},
		{name: "an archive that replaces a link of the tarball", entries: []testEntry{entryDir("static/"), entryLink("static/x.css", "y.css")},
			settings: django(".", vendor), inner: map[string][]testEntry{"vendor.zip": {entryFile("x.css", "new")}},
			want: []string{"vendor.zip: x.css: lands on static/x.css, which is already a link"}},
		{name: "a tar with ./ names", settings: django(".", innerTar),
			inner: map[string][]testEntry{"vendor.tar": {entryDir("./"), entryDir("./v/"), entryFile("./v/x.css", "")}}, want: []string{""}},
		{name: "a source folder with its archives", entries: []testEntry{entryDir("app/")},
			settings: django("app", sites.Deflate{Archive: "v.zip", Into: "static"}),
			inner:    map[string][]testEntry{"app/v.zip": {entryFile("../../x", "")}},
			want:     []string{"v.zip: ../../x: climbs out of the release with .."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := append([]testEntry(nil), c.entries...)
			for name, inner := range c.inner {
				data := archiveData(t, name, inner)
				entries = append(entries, entryFile(name, string(data)))
			}
			if c.settings.Django.SourceFolder == "" {
				c.settings.Django.SourceFolder = "."
			}
			p := writeRelease(t, t.TempDir(), "shop", entries)
			_, err := InspectTarball(p, c.settings)
			t.Log(err)
			for _, want := range c.want {
				switch {
				case want == "" && err != nil:
					t.Errorf("refused: %v", err)
				case want != "" && err == nil:
					t.Errorf("accepted, want a refusal saying %q", want)
				case want != "" && !strings.Contains(err.Error(), want):
					t.Errorf("the refusal does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestReleaseRefusesLinkChains packages source trees whose links are
// inside to the eye but lead out once followed, and names with
// characters unzip and tar read differently.
func TestReleaseRefusesLinkChains(t *testing.T) {
	cases := []struct {
		name  string
		build func(t *testing.T, src string)
		want  []string // "" packages
	}{
		{"a chain that leads out", func(t *testing.T, src string) {
			for _, e := range chain("", 3, "tmp/x") {
				if e.typ == tar.TypeDir {
					os.MkdirAll(filepath.Join(src, e.name), 0o755)
				} else if err := os.Symlink(e.target, filepath.Join(src, e.name)); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{"out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x: the link leads out of the source tree once d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 -> ../../.. is followed"}},
		{"a loop", func(t *testing.T, src string) {
			os.Symlink("b", filepath.Join(src, "a"))
			os.Symlink("a", filepath.Join(src, "b"))
		}, []string{"a -> b: a loop of links"}},
		{"a link through a link that leads out", func(t *testing.T, src string) {
			os.Symlink("..", filepath.Join(src, "notes", "up"))
			os.Symlink("notes/up/..", filepath.Join(src, "escape"))
		}, []string{"escape -> notes/up/..: the link leads out of the source tree once notes/up -> .. is followed"}},
		{"a backslash in a name", func(t *testing.T, src string) {
			write(t, filepath.Join(src, `notes\x.py`), "")
		}, []string{`notes\x.py: a name with a backslash`}},
		{"links inside", func(t *testing.T, src string) {
			os.Symlink("notes/static", filepath.Join(src, "static"))
			os.Symlink("static/notes", filepath.Join(src, "css"))
			os.Symlink("..", filepath.Join(src, "notes", "up"))
			os.Symlink("notes/up/manage.py", filepath.Join(src, "manage-link.py"))
			os.Symlink("missing.css", filepath.Join(src, "dangling.css"))
		}, []string{""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			site, src := project(t, "")
			c.build(t, src)
			_, err := release(t, site, nil)
			for _, want := range c.want {
				switch {
				case want == "" && err != nil:
					t.Errorf("refused: %v", err)
				case want != "" && err == nil:
					t.Errorf("packaged, want a refusal saying %q", want)
				case want != "" && !strings.Contains(err.Error(), want):
					t.Errorf("the refusal does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestUpgradeInspectsEveryHostsSourceFolder: a host whose source_folder
// differs from its environment's has its own archives checked too.
func TestUpgradeInspectsEveryHostsSourceFolder(t *testing.T) {
	site, _ := project(t, `  staging:
    hosts:
      - {address: deploy@127.0.0.1:1, django: {source_folder: app, archives_to_deflate: [{archive: v.zip, into: static}]}}
`)
	bad := zipData(t, []testEntry{entryFile("../../../etc/cron.d/job", "* * * * * root id")})
	p := writeRelease(t, t.TempDir(), "shop", []testEntry{entryDir("app/"), entryFile("app/manage.py", ""), entryFile("app/v.zip", string(bad))})
	_, err := Upgrade(context.Background(), site, "staging", p, Options{Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "v.zip: ../../../etc/cron.d/job: climbs out of the release") || !strings.Contains(err.Error(), "nothing on the hosts changed") {
		t.Errorf("the host's own archive was not inspected: %v", err)
	}
}

// snapshot lists a folder tree with what each entry is, so that two
// snapshots differ when anything in it was created, changed or removed.
func snapshot(t testing.TB, root string, skip ...string) string {
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

// fuzzSpec is a link graph read from fuzz input, one entry a line:
// "<op> <name> [<target>]". Ops: d f l h (tarball folder, file, link,
// hard link), g (a global pax header: key name, value target), zd zf zl
// (zip folder, file, link), zv (a zip link made on VMS), zu (a zip file
// whose Unicode field names it target), i (the folder the zip is
// unpacked into), a (the zip's name in the tarball). A target starting
// with / is put below the sandbox, so that no input reaches the real /.
type fuzzSpec struct {
	tarball, zip []testEntry
	into, name   string
}

// maxUps caps the ..s of one target: with at most 40 links followed per
// path, no path climbs more than 40*maxUps folders, fewer than the
// sandbox's depth above the extraction folder.
const maxUps, sandboxDepth = 12, 512

func parseFuzzSpec(spec, sandbox string) fuzzSpec {
	s := fuzzSpec{into: ".", name: "inner.zip"}
	lines := strings.Split(spec, "\n")
	if len(lines) > 48 {
		lines = lines[:48]
	}
	for _, line := range lines {
		fields := strings.SplitN(line, " ", 3)
		if len(fields) < 2 {
			continue
		}
		op, name, target := fields[0], capUps(fields[1]), ""
		if len(fields) == 3 {
			target = capUps(fields[2])
			if strings.HasPrefix(target, "/") {
				target = sandbox + target
			}
		}
		switch op {
		case "d":
			s.tarball = append(s.tarball, entryDir(name))
		case "f":
			s.tarball = append(s.tarball, entryFile(name, target))
		case "l":
			s.tarball = append(s.tarball, entryLink(name, target))
		case "h":
			s.tarball = append(s.tarball, entryHardlink(name, target))
		case "g":
			s.tarball = append(s.tarball, testEntry{typ: tar.TypeXGlobalHeader, pax: map[string]string{name: target}})
		case "zd":
			s.zip = append(s.zip, entryDir(name))
		case "zf":
			s.zip = append(s.zip, entryFile(name, target))
		case "zl":
			s.zip = append(s.zip, entryLink(name, target))
		case "zv":
			s.zip = append(s.zip, testEntry{name: name, typ: tar.TypeSymlink, target: target, maker: 2})
		case "zu":
			s.zip = append(s.zip, testEntry{name: name, typ: tar.TypeReg, extra: unicodePath(name, target)})
		case "i":
			s.into = name
		case "a":
			s.name = name
		}
	}
	return s
}

// capUps keeps at most maxUps .. components of a target.
func capUps(target string) string {
	parts := strings.Split(target, "/")
	kept, ups := parts[:0], 0
	for _, p := range parts {
		if p == ".." {
			if ups++; ups > maxUps {
				continue
			}
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "/")
}

// linkTreeSeeds are the cases found so far, as fuzz input.
var linkTreeSeeds = []string{
	// The chain: inside to the eye, out once l1 is followed.
	"d d1/\nd d1/d2/\nd d1/d2/d3/\nd d1/d2/d3/d4/\nd d1/d2/d3/d4/d5/\nd d1/d2/d3/d4/d5/d6/\nd d1/d2/d3/d4/d5/d6/d7/\nd d1/d2/d3/d4/d5/d6/d7/d8/\nd d1/d2/d3/d4/d5/d6/d7/d8/d9/\nd d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/\nl d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 ../../..\nl out d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x\nzf x owned\ni out",
	// An archive unpacked through a link the tarball made.
	"d static/\nl static/v ../..\nzf v/x.css owned\ni static",
	"l up ..\nf up/x owned",
	"l a b\nl b a",
	"h h f\nf f x",
	"f f x\nh h f\nl l h\nf l/x y",
	"zl l ../..\nzf l/x owned",
	"zv l ../..\nzf x y",
	"zu safe.css ../../x",
	"g path ../x\nf a b",
	"f a\\b x",
	"f a/../b x",
	"l s d\nd d/\nzf s/x y\ni s",
	"d d/\nl d/up ..\nl e d/up/d/../..\nzf x y\ni e",
	"l abs /decoy\nzf x y\ni abs",
	"f a x\nf ./a y",
	// Inside: a folder reached through a link, links to links.
	"l static notes/static\nd notes/static/\nzd vendor/\nzf vendor/x.css x\nzl vendor/y.css x.css\ni static",
}

// FuzzLinkTree builds a release tarball, with a zip the site unpacks from
// it, from a generated link graph; when the inspection accepts them it
// unpacks them for real with GNU tar and unzip into an empty folder deep
// inside a sandbox, and checks that nothing outside that folder changed
// and that every link in it resolves inside it.
func FuzzLinkTree(f *testing.F) {
	for _, s := range linkTreeSeeds {
		f.Add(s)
	}
	tarBin, tarErr := exec.LookPath("tar")
	unzipBin, unzipErr := exec.LookPath("unzip")
	// One sandbox for every input: the extraction folder sandboxDepth
	// folders down, a decoy folder and file at the top.
	sandbox, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	deep := filepath.Join(sandbox, strings.Repeat("s/", sandboxDepth))
	ex := filepath.Join(deep, "x")
	os.MkdirAll(deep, 0o755)
	os.MkdirAll(filepath.Join(sandbox, "decoy", "tmp"), 0o755)
	os.WriteFile(filepath.Join(sandbox, "decoy", "file"), []byte("decoy"), 0o644)
	tarball := filepath.Join(sandbox, "fuzz-r1.tar.gz")
	f.Fuzz(func(t *testing.T, spec string) {
		if tarErr != nil || unzipErr != nil {
			t.Skip("needs GNU tar and unzip")
		}
		watchdog := time.AfterFunc(20*time.Second, func() { panic("FuzzLinkTree: one input ran for 20s") })
		defer watchdog.Stop()
		s := parseFuzzSpec(spec, sandbox)
		entries := s.tarball
		settings := django(".")
		if len(s.zip) > 0 {
			entries = append(entries, entryFile(s.name, string(zipData(t, s.zip))))
			settings = django(".", sites.Deflate{Archive: s.name, Into: s.into})
		}
		data, err := tryTarData(append([]testEntry{manifest("fuzz")}, entries...))
		if err != nil {
			return // not a tarball Go can write
		}
		if err := os.WriteFile(tarball, gzipData(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := InspectTarball(tarball, settings); err != nil {
			t.Logf("refused: %v", err)
			return
		}
		if err := os.Mkdir(ex, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(ex)
		before := snapshot(t, sandbox, ex)
		// As the host does: the tarball, then the zip into its folder.
		var out bytes.Buffer
		cmd := exec.Command(tarBin, "-x", "--no-same-owner", "--no-same-permissions", "-z", "-f", tarball, "-C", ex)
		cmd.Stdout, cmd.Stderr = &out, &out
		if cmd.Run() == nil && len(s.zip) > 0 {
			into := filepath.Join(ex, s.into)
			if exec.Command("mkdir", "-p", "--", into).Run() == nil {
				cmd := exec.Command(unzipBin, "-q", "-o", filepath.Join(ex, s.name), "-d", into)
				cmd.Stdout, cmd.Stderr = &out, &out
				cmd.Run()
			}
		}
		if after := snapshot(t, sandbox, ex); after != before {
			t.Fatalf("accepted, and unpacking changed what is outside the extraction folder:\n%s\n->\n%s\n%s", before, after, out.String())
		}
		var links []string
		filepath.WalkDir(ex, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSymlink != 0 {
				links = append(links, p)
			}
			return nil
		})
		if len(links) == 0 {
			return
		}
		res, err := exec.Command("realpath", append([]string{"-m", "-z", "--"}, links...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("accepted, but a link cannot be resolved (%v): %s", err, res)
		}
		for i, real := range strings.Split(strings.TrimSuffix(string(res), "\x00"), "\x00") {
			if real != ex && !strings.HasPrefix(real, ex+"/") {
				target, _ := os.Readlink(links[i])
				t.Fatalf("accepted, but %s -> %s resolves to %s, outside %s\n%s", strings.TrimPrefix(links[i], ex+"/"), target, real, ex, out.String())
			}
		}
	})
}
