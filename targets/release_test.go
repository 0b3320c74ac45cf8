package targets

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// project makes a project root in a temporary folder: sites/shop.yaml
// with the given extra YAML lines, and src/ holding a copy of the example
// Django project.
func project(t *testing.T, extra string) (*sites.Site, string) {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	copyTree(t, filepath.Join("..", "example"), src)
	yaml := `project: shop
url: shop.example.com
root: /srv/www
source:
  path: src
django: {source_folder: ., settings_folder: exampleproject, settings_module: exampleproject.settings}
environments:
  production: {hosts: [deploy@shop.example.com]}
` + extra
	if err := os.MkdirAll(filepath.Join(root, "sites"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "sites", "shop.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	site, err := sites.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return site, src
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dest := filepath.Join(to, rel)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(dest, 0o755)
		}
		if strings.HasSuffix(p, ".sqlite3") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		return os.WriteFile(dest, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func release(t *testing.T, site *sites.Site, env map[string]string) (*Artifact, error) {
	t.Helper()
	return Release(context.Background(), site, ReleaseOptions{
		Dist: filepath.Join(site.Root, "dist"),
		Getenv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	})
}

// tarEntry is what a test reads back from a tarball.
type tarEntry struct {
	header *tar.Header
	body   string
}

func readTarball(t *testing.T, p string) map[string]tarEntry {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	comp, err := compression(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := comp.OpenReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]tarEntry{}
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
		out[h.Name] = tarEntry{header: h, body: string(body)}
	}
	return out
}

func names(entries map[string]tarEntry) []string {
	var out []string
	for n := range entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestReleaseIsReproducible(t *testing.T) {
	for _, ext := range []string{"tar.gz", "tar.bz2", "tar.zst"} {
		t.Run(ext, func(t *testing.T) {
			site, src := project(t, "revision_pattern: shop-r${REVISION}."+ext+"\n")
			first, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Touch every file, change their modes' group bits and make the
			// disk list them in another order: none of it may matter.
			when := time.Now().Add(-time.Duration(len(ext)) * time.Hour)
			filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				os.Chtimes(p, when, when)
				if !d.IsDir() {
					info, _ := d.Info()
					os.Chmod(p, info.Mode().Perm()|0o060)
				}
				return nil
			})
			second, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			if first.SHA256 != second.SHA256 || first.Path != second.Path {
				t.Fatalf("two releases of the same source differ: %s %s vs %s %s", first.Path, first.SHA256, second.Path, second.SHA256)
			}
			if !strings.HasSuffix(first.Path, "."+ext) {
				t.Errorf("path %s does not end with .%s", first.Path, ext)
			}
			sidecar, err := os.ReadFile(first.Path + ".sha256")
			if err != nil || string(sidecar) != first.SHA256+"  "+filepath.Base(first.Path)+"\n" {
				t.Errorf("sha256 file = %q, %v", sidecar, err)
			}
			for name, e := range readTarball(t, first.Path) {
				h := e.header
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner %d:%d %q:%q, want 0:0 without names", name, h.Uid, h.Gid, h.Uname, h.Gname)
				}
				if !h.ModTime.Equal(defaultEpoch) {
					t.Errorf("%s: time %v, want %v", name, h.ModTime, defaultEpoch)
				}
				if h.Typeflag == tar.TypeReg && h.Mode != 0o644 && h.Mode != 0o755 {
					t.Errorf("%s: mode %o, want 644 or 755", name, h.Mode)
				}
			}
			// A changed file changes the tarball and its content-hash revision.
			write(t, filepath.Join(src, "notes", "views.py"), "# changed\n")
			third, err := release(t, site, nil)
			if err != nil {
				t.Fatal(err)
			}
			if third.SHA256 == first.SHA256 || third.Manifest.Revision == first.Manifest.Revision {
				t.Error("a changed source gave the same tarball or revision")
			}
		})
	}
}

func TestReleaseManifest(t *testing.T) {
	site, _ := project(t, "")
	a, err := release(t, site, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"})
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	e, ok := entries[ManifestName]
	if !ok {
		t.Fatalf("no %s in %v", ManifestName, names(entries))
	}
	var m templates.Manifest
	if err := json.Unmarshal([]byte(e.body), &m); err != nil {
		t.Fatal(err)
	}
	if m != a.Manifest {
		t.Errorf("manifest in the tarball %+v differs from the one returned %+v", m, a.Manifest)
	}
	if m.Project != "shop" || m.Source != "path:src" || m.Files < 10 || len(m.FilesSHA256) != 64 {
		t.Errorf("manifest = %+v", m)
	}
	if m.Revision != m.FilesSHA256[:12] {
		t.Errorf("revision outside git = %q, want the content hash's first 12 digits", m.Revision)
	}
	if filepath.Base(a.Path) != "shop-r"+m.Revision+".tar.gz" {
		t.Errorf("tarball name %s does not follow the default pattern", a.Path)
	}
	if want := time.Unix(1700000000, 0); !e.header.ModTime.Equal(want) || m.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("SOURCE_DATE_EPOCH not used: entry time %v, created %s", e.header.ModTime, m.Created)
	}
	if len(a.SHA256) != 64 || a.Size <= 0 {
		t.Errorf("artifact = %+v", a)
	}
}

func TestReleaseExcludes(t *testing.T) {
	site, src := project(t, "")
	// The site's own patterns: one more exclude, one default put back.
	site.Settings.Source.Exclude = []string{"*.log", "/notes/fixtures/"}
	site.Settings.Source.Include = []string{"public.key"}
	left := []string{
		".git/config", "notes/__pycache__/views.cpython-311.pyc", "notes/old.pyc", "db.sqlite3",
		".env", ".env.production", "media/avatar.png", "secrets.py", "secrets.env", "production.secrets.age",
		"server.key", "id_ed25519", "debug.log", "notes/fixtures/users.json", "dist/old.tar.gz",
	}
	kept := []string{"notes/media/keep.txt", "public.key", "notes/secretary.py"}
	for _, p := range append(append([]string{}, left...), kept...) {
		write(t, filepath.Join(src, p), "x\n")
	}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarball(t, a.Path)
	for _, p := range left {
		for name := range entries {
			if name == p || strings.HasPrefix(p, name) && strings.HasSuffix(name, "/") && name != "notes/" {
				t.Errorf("%s went into the tarball (as %s)", p, name)
			}
		}
	}
	for _, p := range kept {
		if _, ok := entries[p]; !ok {
			t.Errorf("%s was left out; tarball has %v", p, names(entries))
		}
	}
}

func TestReleaseRefusesEscapingLinks(t *testing.T) {
	site, src := project(t, "")
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "notes", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "hostname")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes/static", filepath.Join(src, "static-link")); err != nil {
		t.Fatal(err)
	}
	_, err := release(t, site, nil)
	if err == nil {
		t.Fatal("release with escaping links succeeded")
	}
	for _, want := range []string{
		"hostname -> /etc/hostname: absolute links point at the build machine",
		"notes/passwd -> ../../etc/passwd: the link leads out of the source tree",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "static-link") {
		t.Errorf("a link inside the tree was refused: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(site.Root, "dist", "*")); len(files) > 0 {
		t.Errorf("a refused release left files behind: %v", files)
	}

	// Without the escaping links, the inside link is packaged as a link.
	os.Remove(filepath.Join(src, "notes", "passwd"))
	os.Remove(filepath.Join(src, "hostname"))
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := readTarball(t, a.Path)["static-link"]
	if e.header == nil || e.header.Typeflag != tar.TypeSymlink || e.header.Linkname != "notes/static" {
		t.Errorf("static-link entry = %+v", e.header)
	}
}

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2024-05-01T10:00:00Z", "GIT_COMMITTER_DATE=2024-05-01T10:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func needGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed; .ci/run must install it")
		}
		t.Skip("git is not installed")
	}
}

func TestReleaseFromGitCheckout(t *testing.T) {
	needGit(t)
	site, src := project(t, "")
	gitRun(t, site.Root, "init", "-q", "-b", "main")
	write(t, filepath.Join(site.Root, ".gitignore"), "dist/\n")
	gitRun(t, site.Root, "add", "-A")
	gitRun(t, site.Root, "commit", "-q", "-m", "first")
	short := gitRun(t, site.Root, "rev-parse", "--short", "HEAD")

	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Revision != short || !strings.HasPrefix(a.Manifest.Source, "path:src@") {
		t.Errorf("manifest = %+v, want revision %s", a.Manifest, short)
	}
	if a.Manifest.Created != "2024-05-01T10:00:00Z" {
		t.Errorf("entry time %s, want the commit's time", a.Manifest.Created)
	}

	// An untracked file that is excluded anyway does not make it dirty.
	write(t, filepath.Join(src, "db.sqlite3"), "data")
	if a2, err := release(t, site, nil); err != nil || a2.SHA256 != a.SHA256 {
		t.Errorf("an excluded untracked file changed the release: %v", err)
	}
	// A packaged change does.
	write(t, filepath.Join(src, "notes", "views.py"), "# local change\n")
	a3, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a3.Manifest.Revision, short+"-dirty-") {
		t.Errorf("revision of a changed checkout = %q, want %s-dirty-…", a3.Manifest.Revision, short)
	}
	// CI's variable wins over the source.
	a4, err := release(t, site, map[string]string{"REVISION": "build42"})
	if err != nil || a4.Manifest.Revision != "build42" || filepath.Base(a4.Path) != "shop-rbuild42.tar.gz" {
		t.Errorf("REVISION=build42 gave %+v, %v", a4, err)
	}
}

func TestReleaseFromGitRepositoryAtRef(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	copyTree(t, filepath.Join("..", "example"), repo)
	gitRun(t, repo, "init", "-q", "-b", "main")
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "v1")
	gitRun(t, repo, "tag", "v1")
	v1 := gitRun(t, repo, "rev-parse", "--short", "HEAD")
	write(t, filepath.Join(repo, "notes", "views.py"), "# v2\n")
	gitRun(t, repo, "commit", "-q", "-am", "v2")

	site, _ := project(t, "")
	site.Settings.Source = sites.Source{Git: repo, Ref: "v1"}
	a, err := release(t, site, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Revision != v1 {
		t.Errorf("revision = %s, want the tag's commit %s", a.Manifest.Revision, v1)
	}
	if body := readTarball(t, a.Path)["notes/views.py"].body; strings.Contains(body, "# v2") {
		t.Error("the tarball holds the branch head, not the tag")
	}
	if _, ok := readTarball(t, a.Path)[".git/"]; ok {
		t.Error("the checkout's .git went into the tarball")
	}

	site.Settings.Source.Ref = "no-such-ref"
	if _, err := release(t, site, nil); err == nil || !strings.Contains(err.Error(), `source.ref "no-such-ref": no such branch, tag or commit`) {
		t.Errorf("bad ref: %v", err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"BUILD": "42", "BRANCH": "feature/x", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		pattern, want, err string
	}{
		{"shop-r${REVISION}.tar.gz", "shop-r1a2b3c4.tar.gz", ""},
		{"shop-${BUILD}-${REVISION}.tar.bz2", "shop-42-1a2b3c4.tar.bz2", ""},
		{"shop-${CI_COMMIT}.tar.gz", "", "needs CI_COMMIT from the environment"},
		{"shop-${EMPTY}-${NOPE}.tar.gz", "", "needs EMPTY, NOPE from the environment"},
		{"shop-${BRANCH}.tar.gz", "", `expands to "shop-feature/x.tar.gz", which is not a safe file name`},
		{"shop.tar.gz", "", "has no ${VAR}"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.pattern, "1a2b3c4", getenv)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%q) error = %v, want %q", tt.pattern, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f := newFilter([]string{"docs/"}, []string{"keep.pyc"})
	tests := []struct {
		rel   string
		dir   bool
		wants bool
	}{
		{"notes/views.py", false, false},
		{"notes/__pycache__", true, true},
		{"a/b/c.pyc", false, true},
		{"keep.pyc", false, false},
		{"media", true, true},
		{"notes/media", true, false},
		{"docs", true, true},
		{"docs", false, false},
		{"src/docs", true, true},
		{"config/.env", false, true},
	}
	for _, tt := range tests {
		if got := f.excluded(tt.rel, tt.dir); got != tt.wants {
			t.Errorf("excluded(%q, dir=%v) = %v, want %v", tt.rel, tt.dir, got, tt.wants)
		}
	}
}
