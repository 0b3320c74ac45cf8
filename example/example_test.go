// Package example holds the example Django site that djship's example
// site file ships; this test file checks that the site works on the
// Django that Debian packages.
package example

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/release"
	"github.com/djship/djship/sites"
)

// manage runs manage.py in dir with a throwaway database.
func manage(t *testing.T, python, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{"manage.py"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "DATABASE_PATH="+filepath.Join(t.TempDir(), "db.sqlite3"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("manage.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestExampleSiteOnDebianDjango(t *testing.T) {
	python := testenv.Django(t)
	manage(t, python, ".", nil, "check")
	if out := manage(t, python, ".", nil, "makemigrations", "--check", "--dry-run"); !strings.Contains(out, "No changes detected") {
		t.Errorf("models and migrations differ:\n%s", out)
	}
	manage(t, python, ".", nil, "test", "--noinput")
	static := t.TempDir()
	manage(t, python, ".", []string{"DJANGO_STATIC_ROOT=" + static}, "collectstatic", "--noinput")
	if _, err := os.Stat(filepath.Join(static, "notes", "style.css")); err != nil {
		t.Errorf("collectstatic did not collect the app's stylesheet: %v", err)
	}
}

// TestReleasedExampleShowsItsRevision packages the example with the example
// site file, unpacks the tarball and checks that the released site reports
// the manifest's revision and reads the secret file.
func TestReleasedExampleShowsItsRevision(t *testing.T) {
	python := testenv.Django(t)
	tar := testenv.Command(t, "tar", "tar")
	site, err := sites.Load(filepath.Join("..", "sites", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := release.Build(context.Background(), site, release.Options{
		Dist:   t.TempDir(),
		Getenv: func(k string) (string, bool) { v, ok := map[string]string{"REVISION": "test1234"}[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if out, err := exec.Command(tar, "-xzf", a.Path, "-C", src).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	secret := filepath.Join(t.TempDir(), "secrets.py")
	if err := os.WriteFile(secret, []byte("SECRET_KEY = 'x' * 50\nGREETING = 'Hello from the secret file'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := manage(t, python, src, []string{"DJANGO_SETTINGS_SECRET_FILE=" + secret}, "shell", "-c",
		"import json; from django.conf import settings; print(json.dumps([settings.DJSHIP_REVISION, settings.GREETING, settings.DEBUG]))")
	var got []any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("settings output %q: %v", out, err)
	}
	if got[0] != "test1234" || got[1] != "Hello from the secret file" || got[2] != false {
		t.Errorf("released site settings = %v, want [test1234, Hello from the secret file, false]", got)
	}
	manage(t, python, src, nil, "test", "--noinput")
}
