package release

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testarchive"
	"github.com/djship/djship/sites"
)

func django(folder string, archives ...sites.Deflate) sites.Settings {
	return sites.Settings{Django: sites.Django{SourceFolder: folder, ArchivesToDeflate: archives}}
}

// TestInspectLinkTree judges tarballs, with the archives the site
// unpacks from them, as one tree: what is inside to the eye but leads
// out once the links are followed is refused, with the entry named.
func TestInspectLinkTree(t *testing.T) {
	vendor := sites.Deflate{Archive: "vendor.zip", Into: "static"}
	innerTar := sites.Deflate{Archive: "vendor.tar", Into: "static"}
	var tooLong, longest []testarchive.Entry
	for i := 0; i < 41; i++ {
		tooLong = append(tooLong, testarchive.Link(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
		if i < 39 {
			longest = append(longest, testarchive.Link(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)))
		}
	}
	tooLong = append(tooLong, testarchive.Link("l41", "."))
	longest = append(longest, testarchive.Link("l39", "."))
	cases := []struct {
		name     string
		entries  []testarchive.Entry
		settings sites.Settings
		inner    map[string][]testarchive.Entry // archives in the tarball, by name
		want     []string                       // "" accepts
	}{
		{name: "a chain inside to the eye that leads out", entries: testarchive.Chain("", 3, "tmp/x"),
			want: []string{"out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../../tmp/x: the link leads out of the release once d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 -> ../../.. is followed"}},
		{name: "an archive unpacked into the chain", entries: append(testarchive.Chain("", 3, "etc/cron.d"), testarchive.File("manage.py", "")),
			settings: django(".", sites.Deflate{Archive: "vendor.tar", Into: "out"}),
			inner:    map[string][]testarchive.Entry{"vendor.tar": {testarchive.File("job", "* * * * * root id")}},
			want:     []string{"vendor.tar: into out: lands out of the release once d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1 -> ../../.. is followed"}},
		{name: "a chain inside an archive", settings: django(".", innerTar),
			inner: map[string][]testarchive.Entry{"vendor.tar": testarchive.Chain("", 2, "x")},
			want:  []string{"vendor.tar: out -> d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/l1/../../../../../../../../../x: the link leads out of the release"}},
		{name: "a loop", entries: []testarchive.Entry{testarchive.Link("a", "b"), testarchive.Link("b", "a")},
			want: []string{"a -> b: a loop of links", "b -> a: a loop of links"}},
		{name: "more than 40 links in a row", entries: tooLong, want: []string{"l0 -> l1: a loop of links, or a chain of more than 40"}},
		{name: "40 links in a row", entries: longest, want: []string{""}},
		{name: "a link to a link that leads out", entries: []testarchive.Entry{testarchive.Dir("a/"), testarchive.Link("a/up", ".."), testarchive.Link("b", "a/up/..")},
			want: []string{"b -> a/up/..: the link leads out of the release once a/up -> .. is followed"}},
		{name: "an entry below a link that leads out", entries: []testarchive.Entry{testarchive.Link("up", ".."), testarchive.File("up/x", "")},
			want: []string{"up/x: lands out of the release"}},
		{name: "two entries with one name", entries: []testarchive.Entry{testarchive.File("a", "1"), testarchive.File("./a", "2")},
			want: []string{"./a: a second entry with this name"}},
		{name: "a backslash", entries: []testarchive.Entry{testarchive.File(`a\b`, "")}, want: []string{`a\b: a name with a backslash`}},
		{name: "a control character", entries: []testarchive.Entry{testarchive.File("a\nb", "")}, want: []string{`"a\nb": a name with a control character`}},
		{name: "a NUL in a zip name", settings: django(".", vendor),
			inner: map[string][]testarchive.Entry{"vendor.zip": {testarchive.File("a\x00b", "")}},
			want:  []string{`vendor.zip: "a\x00b": a name with a control character`}},
		{name: ".. inside a name", entries: []testarchive.Entry{testarchive.Dir("a/"), testarchive.File("a/../b", "")}, want: []string{"a/../b: a name with .. in it"}},
		{name: "a hard link to a later file", entries: []testarchive.Entry{testarchive.Hardlink("h", "f"), testarchive.File("f", "")},
			want: []string{"h => f: a hard link to f, which is not an earlier regular file of the archive"}},
		{name: "a hard link to a folder", entries: []testarchive.Entry{testarchive.Dir("d/"), testarchive.Hardlink("h", "d")},
			want: []string{"h => d: a hard link to d, which is not an earlier regular file"}},
		{name: "a hard link to a link", entries: []testarchive.Entry{testarchive.File("f", ""), testarchive.Link("l", "f"), testarchive.Hardlink("h", "l")},
			want: []string{"h => l: a hard link to l, which is not an earlier regular file"}},
		{name: "a hard link to an earlier file", entries: []testarchive.Entry{testarchive.File("f", "x"), testarchive.Hardlink("h", "f"), testarchive.Hardlink("h2", "./h")}, want: []string{""}},
		{name: "a global header that renames every entry", entries: []testarchive.Entry{{Type: tar.TypeXGlobalHeader, PAX: map[string]string{"path": "../../etc/cron.d/x"}}, testarchive.File("a", "")},
			want: []string{"a global pax header that changes every entry after it (path)"}},
		{name: "a global comment, as git archive writes", entries: []testarchive.Entry{{Type: tar.TypeXGlobalHeader, PAX: map[string]string{"comment": "0123abc"}}, testarchive.File("a", "")},
			want: []string{""}},
		{name: "a zip link made on VMS", settings: django(".", vendor),
			inner: map[string][]testarchive.Entry{"vendor.zip": {{Name: "l", Type: tar.TypeSymlink, Target: "../../../etc", Maker: 2}}},
			want:  []string{"vendor.zip: l -> ../../../etc: the link leads out of the release"}},
		{name: "a zip entry with a second, Unicode name", settings: django(".", vendor),
			inner: map[string][]testarchive.Entry{"vendor.zip": {{Name: "safe.css", Type: tar.TypeReg, Extra: testarchive.UnicodePath("safe.css", "../../../etc/cron.d/x")}}},
			want:  []string{"vendor.zip: safe.css: a second, Unicode name"}},
		{name: "an archive entry through a link of the tarball", entries: []testarchive.Entry{testarchive.Dir("static/"), testarchive.Link("static/v", "../vendor"), testarchive.Dir("vendor/")},
			settings: django(".", vendor), inner: map[string][]testarchive.Entry{"vendor.zip": {testarchive.File("v/x.css", "")}},
			want: []string{"vendor.zip: v/x.css: goes through the link static/v -> ../vendor of the release, which unpacking never follows"}},
		{name: "an archive named through a link", entries: []testarchive.Entry{testarchive.Link("lib", "third"), testarchive.Dir("third/")},
			settings: django(".", sites.Deflate{Archive: "lib/v.zip", Into: "static"}),
			inner:    map[string][]testarchive.Entry{"third/v.zip": {testarchive.File("../x", "")}},
			want:     []string{"lib/v.zip: ../x: climbs out of the release with .."}},
		{name: "a source folder through a link that leads out", entries: []testarchive.Entry{testarchive.Link("app", "../elsewhere")},
			settings: django("app"), want: []string{"django.source_folder app: lands out of the release"}},
		{name: "links inside, to links, and dangling", entries: []testarchive.Entry{
			testarchive.Link("a", "b"), testarchive.Link("b", "c/"), testarchive.Dir("c/"), testarchive.File("c/f", ""), testarchive.Link("broken.css", "missing.css"),
			testarchive.Dir("d/"), testarchive.Link("d/up", ".."), testarchive.Link("e", "d/up/c/../a"), testarchive.Link("m", "missing/../c")}, want: []string{""}},
		{name: "an archive into a folder reached through a link", entries: []testarchive.Entry{testarchive.Link("static", "notes/static"), testarchive.Dir("notes/static/")},
			settings: django(".", vendor), inner: map[string][]testarchive.Entry{"vendor.zip": {testarchive.Dir("vendor/"), testarchive.File("vendor/x.css", ""), testarchive.Link("vendor/y.css", "x.css")}},
			want: []string{""}},
		{name: "an archive that replaces a file of the tarball", entries: []testarchive.Entry{testarchive.Dir("static/"), testarchive.File("static/x.css", "old")},
			settings: django(".", vendor), inner: map[string][]testarchive.Entry{"vendor.zip": {testarchive.File("x.css", "new")}}, want: []string{""}},
		{name: "an archive that replaces a link of the tarball", entries: []testarchive.Entry{testarchive.Dir("static/"), testarchive.Link("static/x.css", "y.css")},
			settings: django(".", vendor), inner: map[string][]testarchive.Entry{"vendor.zip": {testarchive.File("x.css", "new")}},
			want: []string{"vendor.zip: x.css: lands on static/x.css, which is already a link"}},
		{name: "a tar with ./ names", settings: django(".", innerTar),
			inner: map[string][]testarchive.Entry{"vendor.tar": {testarchive.Dir("./"), testarchive.Dir("./v/"), testarchive.File("./v/x.css", "")}}, want: []string{""}},
		{name: "a source folder with its archives", entries: []testarchive.Entry{testarchive.Dir("app/")},
			settings: django("app", sites.Deflate{Archive: "v.zip", Into: "static"}),
			inner:    map[string][]testarchive.Entry{"app/v.zip": {testarchive.File("../../x", "")}},
			want:     []string{"v.zip: ../../x: climbs out of the release with .."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := append([]testarchive.Entry(nil), c.entries...)
			for name, inner := range c.inner {
				data := testarchive.Archive(t, name, inner)
				entries = append(entries, testarchive.File(name, string(data)))
			}
			if c.settings.Django.SourceFolder == "" {
				c.settings.Django.SourceFolder = "."
			}
			p := testarchive.WriteRelease(t, t.TempDir(), "shop", entries)
			_, err := Inspect(p, c.settings)
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
			for _, e := range testarchive.Chain("", 3, "tmp/x") {
				if e.Type == tar.TypeDir {
					os.MkdirAll(filepath.Join(src, e.Name), 0o755)
				} else if err := os.Symlink(e.Target, filepath.Join(src, e.Name)); err != nil {
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

// fuzzSpec is a link graph read from fuzz input, one entry a line:
// "<op> <name> [<target>]". Ops: d f l h (tarball folder, file, link,
// hard link), g (a global pax header: key name, value target), zd zf zl
// (zip folder, file, link), zv (a zip link made on VMS), zu (a zip file
// whose Unicode field names it target), i (the folder the zip is
// unpacked into), a (the zip's name in the tarball). A target starting
// with / is put below the sandbox, so that no input reaches the real /.
type fuzzSpec struct {
	tarball, zip []testarchive.Entry
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
			s.tarball = append(s.tarball, testarchive.Dir(name))
		case "f":
			s.tarball = append(s.tarball, testarchive.File(name, target))
		case "l":
			s.tarball = append(s.tarball, testarchive.Link(name, target))
		case "h":
			s.tarball = append(s.tarball, testarchive.Hardlink(name, target))
		case "g":
			s.tarball = append(s.tarball, testarchive.Entry{Type: tar.TypeXGlobalHeader, PAX: map[string]string{name: target}})
		case "zd":
			s.zip = append(s.zip, testarchive.Dir(name))
		case "zf":
			s.zip = append(s.zip, testarchive.File(name, target))
		case "zl":
			s.zip = append(s.zip, testarchive.Link(name, target))
		case "zv":
			s.zip = append(s.zip, testarchive.Entry{Name: name, Type: tar.TypeSymlink, Target: target, Maker: 2})
		case "zu":
			s.zip = append(s.zip, testarchive.Entry{Name: name, Type: tar.TypeReg, Extra: testarchive.UnicodePath(name, target)})
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
			entries = append(entries, testarchive.File(s.name, string(testarchive.Zip(t, s.zip))))
			settings = django(".", sites.Deflate{Archive: s.name, Into: s.into})
		}
		data, err := testarchive.TryTar(append([]testarchive.Entry{testarchive.Manifest("fuzz")}, entries...))
		if err != nil {
			return // not a tarball Go can write
		}
		if err := os.WriteFile(tarball, testarchive.Gzip(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(tarball, settings); err != nil {
			t.Logf("refused: %v", err)
			return
		}
		if err := os.Mkdir(ex, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(ex)
		before := testarchive.Snapshot(t, sandbox, ex)
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
		if after := testarchive.Snapshot(t, sandbox, ex); after != before {
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

// TestManifestNameOfTestArchives: the release tarballs the tests build
// carry the manifest under the name the inspection looks for.
func TestManifestNameOfTestArchives(t *testing.T) {
	if testarchive.ManifestName != ManifestName {
		t.Errorf("testarchive writes the manifest as %s, releases carry it as %s", testarchive.ManifestName, ManifestName)
	}
}
