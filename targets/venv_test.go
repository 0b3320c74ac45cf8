package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// buildFolder is a folder under /srv for a test that runs the build
// user, who must pass through it, and makes that user when it is
// missing.
func buildFolder(t *testing.T, name string) string {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.Command(t, "runuser", "util-linux")
	testenv.Command(t, "setfacl", "acl")
	if exec.Command("id", "-u", buildUser).Run() != nil {
		if out, err := exec.Command("sh", "-c", script("add-unpack-user.sh"), "add", buildUser).CombinedOutput(); err != nil {
			t.Fatalf("add %s: %v\n%s", buildUser, err, out)
		}
	}
	dir := filepath.Join("/srv", "djship-test-"+name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runVenv runs the virtualenv script for releases/<release>/venv of base
// as the virtualenv step does, src/ being the build user's as unpacking
// leaves it.
func runVenv(t *testing.T, base, release, python, key string, system bool, deps ...string) (string, error) {
	t.Helper()
	r := filepath.Join(base, "releases", release)
	src := filepath.Join(r, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", buildUser+":", src).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	args := append([]string{"-c", script("venv.sh"), "venv", filepath.Join(r, "venv"), python, key, src, fmt.Sprint(system), "false", "",
		filepath.Join(base, "current"), buildUser, script("build-venv.sh"), script("take-over.sh"), script("check-release.sh")}, deps...)
	out, err := exec.Command("sh", args...).CombinedOutput()
	return string(out), err
}

// TestVenvReuseRewritesPathsLiterally reuses a virtualenv the way the
// upgrade does when the dependencies did not change (hard links), from a folder whose
// name holds characters a sed pattern would read as syntax: the scripts'
// shebangs and the activate script must point at the copy, byte for
// byte, and nothing else may change. A link the previous virtualenv
// holds where the rewrite makes its new files is never written through.
func TestVenvReuseRewritesPathsLiterally(t *testing.T) {
	python := testenv.Command(t, "/usr/bin/python3", "python3")
	top := buildFolder(t, "venv-reuse")
	for i, odd := range []string{"a&b", "a|b", `a\1b`, "a.b*c", "a#b"} {
		t.Run(odd, func(t *testing.T) {
			base := filepath.Join(top, fmt.Sprint(i), odd)
			old := filepath.Join(base, "releases", "r1", "venv")
			next := filepath.Join(base, "releases", "r2", "venv")
			if err := os.MkdirAll(filepath.Join(old, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(top, fmt.Sprint(i), "victim")
			os.WriteFile(victim, []byte("untouched\n"), 0o644)
			os.WriteFile(filepath.Join(old, "bin", "gunicorn"), []byte("#!"+old+"/bin/python\nimport sys\n# "+old+" stays in the body\n"), 0o755)
			os.WriteFile(filepath.Join(old, "bin", "activate"), []byte("VIRTUAL_ENV=\""+old+"\"\nexport PATH=\""+old+"/bin:$PATH\"\n"), 0o644)
			os.Symlink(victim, filepath.Join(old, "bin", "gunicorn.djship-new"))
			os.Symlink("python3", filepath.Join(old, "bin", "python"))
			os.WriteFile(filepath.Join(old, ".djship-deps"), []byte("k"), 0o644)
			current := filepath.Join(base, "current")
			os.Symlink(filepath.Join("releases", "r1"), current)

			out, err := runVenv(t, base, "r2", python, "k", false)
			if err != nil || !strings.Contains(out, "reused") {
				t.Fatalf("venv script: %v\n%s", err, out)
			}
			if b, _ := os.ReadFile(victim); string(b) != "untouched\n" {
				t.Errorf("the rewrite wrote through a link: %q", b)
			}
			script, _ := os.ReadFile(filepath.Join(next, "bin", "gunicorn"))
			if want := "#!" + next + "/bin/python\nimport sys\n# " + old + " stays in the body\n"; string(script) != want {
				t.Errorf("script:\n%s\nwant:\n%s", script, want)
			}
			if st, err := os.Stat(filepath.Join(next, "bin", "gunicorn")); err != nil || st.Mode().Perm() != 0o755 {
				t.Errorf("script mode: %v %v", st.Mode(), err)
			}
			activate, _ := os.ReadFile(filepath.Join(next, "bin", "activate"))
			if want := "VIRTUAL_ENV=\"" + next + "\"\nexport PATH=\"" + next + "/bin:$PATH\"\n"; string(activate) != want {
				t.Errorf("activate:\n%s\nwant:\n%s", activate, want)
			}
			if link, _ := os.Readlink(filepath.Join(next, "bin", "python")); link != "python3" {
				t.Errorf("python link = %q", link)
			}
			// The copy shares the files by hard links, but never the ones it
			// rewrote: the previous release still runs from its own paths.
			if old, _ := os.ReadFile(filepath.Join(old, "bin", "gunicorn")); !strings.HasPrefix(string(old), "#!"+filepath.Join(base, "releases", "r1")) {
				t.Errorf("the previous release's script changed:\n%s", old)
			}
			if old, _ := os.ReadFile(filepath.Join(old, "bin", "activate")); strings.Contains(string(old), next) {
				t.Errorf("the previous release's activate changed:\n%s", old)
			}
			a, _ := os.Stat(filepath.Join(old, ".djship-deps"))
			b, _ := os.Stat(filepath.Join(next, ".djship-deps"))
			if !os.SameFile(a, b) {
				t.Error("the reused virtualenv is a copy, not hard links")
			}
			if owners := sh(t, `find "$1" ! -user root | head -n 3`, filepath.Dir(next)); owners != "" {
				t.Errorf("files not root's after the virtualenv step:\n%s", owners)
			}
		})
	}
}

// TestVenvWithoutDjangoSaysHowToFix builds a virtualenv that cannot
// import Django: the step fails at once and names both fixes, instead of
// a traceback inside migrate.
func TestVenvWithoutDjangoSaysHowToFix(t *testing.T) {
	testenv.NeedRoot(t)
	python := testenv.Command(t, "/usr/bin/python3", "python3-venv")
	base := buildFolder(t, "venv-nodjango")
	site := &sites.Site{Name: "shop", Root: base}
	settings := sites.Settings{Project: "shop", Root: base, Python: python}
	env := &sites.Environment{Name: "test", Settings: settings}
	d := NewDeploy(site, env, settings, remote.NewLocal(nil), remote.NewOutput(io.Discard, nil))
	d.Release = "r1"
	if err := os.MkdirAll(d.srcDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, `chown -R "$1:" "$2"`, buildUser, filepath.Dir(d.srcDir()))
	_, err := venvStep{}.Run(context.Background(), d)
	if err == nil {
		t.Fatal("a virtualenv without Django passed")
	}
	for _, want := range []string{"cannot import Django", "django.dependencies", "packages: [python3-django]", "system_site_packages: true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}
