package targets

import (
	"context"
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

// TestVenvReuseRewritesPathsLiterally reuses a virtualenv the way the
// upgrade does when the dependencies did not change (hard links), from a folder whose
// name holds characters a sed pattern would read as syntax: the scripts'
// shebangs and the activate script must point at the copy, byte for
// byte, and nothing else may change.
func TestVenvReuseRewritesPathsLiterally(t *testing.T) {
	python := testenv.Command(t, "python3", "python3")
	for _, odd := range []string{"a&b", "a|b", `a\1b`, "a.b*c", "a#b"} {
		t.Run(odd, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), odd)
			old := filepath.Join(base, "releases", "r1", "venv")
			next := filepath.Join(base, "releases", "r2", "venv")
			if err := os.MkdirAll(filepath.Join(old, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(next), 0o755)
			os.WriteFile(filepath.Join(old, "bin", "gunicorn"), []byte("#!"+old+"/bin/python\nimport sys\n# "+old+" stays in the body\n"), 0o755)
			os.WriteFile(filepath.Join(old, "bin", "activate"), []byte("VIRTUAL_ENV=\""+old+"\"\nexport PATH=\""+old+"/bin:$PATH\"\n"), 0o644)
			os.Symlink("python3", filepath.Join(old, "bin", "python"))
			os.WriteFile(filepath.Join(old, ".djship-deps"), []byte("k"), 0o644)
			current := filepath.Join(base, "current")
			os.Symlink(filepath.Join("releases", "r1"), current)

			out, err := exec.Command("sh", "-c", script("venv.sh"), "venv", next, python, "k", base, "false", "false", "", current).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "reused") {
				t.Fatalf("venv script: %v\n%s", err, out)
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
		})
	}
}

// TestVenvWithoutDjangoSaysHowToFix builds a virtualenv that cannot
// import Django: the step fails at once and names both fixes, instead of
// a traceback inside migrate.
func TestVenvWithoutDjangoSaysHowToFix(t *testing.T) {
	testenv.NeedRoot(t)
	python := testenv.Command(t, "/usr/bin/python3", "python3-venv")
	base := t.TempDir()
	site := &sites.Site{Name: "shop", Root: base}
	settings := sites.Settings{Project: "shop", Root: base, Python: python}
	env := &sites.Environment{Name: "test", Settings: settings}
	d := NewDeploy(site, env, settings, remote.NewLocal(nil), remote.NewOutput(io.Discard, nil))
	d.Release = "r1"
	if err := os.MkdirAll(d.srcDir(), 0o755); err != nil {
		t.Fatal(err)
	}
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
