package targets

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

func TestDatabaseURL(t *testing.T) {
	for _, c := range []struct {
		name string
		db   sites.Database
		want string
	}{
		{"sqlite", sites.Database{Engine: "sqlite", Path: "db.sqlite3"}, "sqlite:////srv/www/shop/shared/db/db.sqlite3"},
		{"postgres on this host", sites.Database{Engine: "postgres", Name: "shop", User: "shop", Port: 5432, PasswordSecret: "DATABASE_PASSWORD"},
			"postgres://shop:p%40ss%2Fw%3Ard%20%27%22@localhost:5432/shop"},
		{"postgres elsewhere, IPv6", sites.Database{Engine: "postgres", Name: "shop", User: "shop", Host: "::1", Port: 6432, PasswordSecret: "DATABASE_PASSWORD"},
			"postgres://shop:p%40ss%2Fw%3Ard%20%27%22@[::1]:6432/shop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, _ := fakeDeploy(&fakeHost{}, 5)
			d.Settings.Database = c.db
			d.Secrets["DATABASE_PASSWORD"] = `p@ss/w:rd '"`
			got := d.databaseURL()
			if got != c.want {
				t.Fatalf("DATABASE_URL = %s, want %s", got, c.want)
			}
			if c.db.Engine == "postgres" {
				u, err := url.Parse(got)
				if err != nil {
					t.Fatal(err)
				}
				if p, _ := u.User.Password(); p != `p@ss/w:rd '"` {
					t.Errorf("the password reads back as %q", p)
				}
			}
		})
	}
}

func TestApplicationEnvironment(t *testing.T) {
	d, _ := fakeDeploy(&fakeHost{}, 5)
	d.Settings.Django.SettingsModule = "shop.settings"
	d.Settings.Django.Environment = map[string]string{"DJANGO_ALLOWED_HOSTS": "shop.example.com", "DATABASE_ENGINE": "custom"}
	d.Settings.Database = sites.Database{Engine: "sqlite", Path: "db.sqlite3"}
	d.Secrets = map[string]string{"SECRET_KEY": "k", "API_TOKEN": "t", "BROKEN": "a\x00b"}
	env, skipped := d.applicationEnvironment()
	for k, want := range map[string]string{
		"DJANGO_SETTINGS_MODULE": "shop.settings", "DJANGO_ALLOWED_HOSTS": "shop.example.com",
		"DATABASE_ENGINE": "custom", // the site's own variables win
		"DATABASE_URL":    "sqlite:////srv/www/shop/shared/db/db.sqlite3",
		"SECRET_KEY":      "k", "API_TOKEN": "t",
		"DJANGO_SETTINGS_SECRET_FILE": "/srv/www/shop/secrets.py",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if _, ok := env["BROKEN"]; ok || len(skipped) != 1 || skipped[0] != "BROKEN" {
		t.Errorf("a value with a NUL byte: skipped %v", skipped)
	}
	d.Settings.Secrets.Environment = []string{"SECRET_KEY"}
	if env, _ := d.applicationEnvironment(); env["API_TOKEN"] != "" || env["SECRET_KEY"] != "k" {
		t.Errorf("secrets.environment [SECRET_KEY] gives %v", env)
	}
	d.Settings.Secrets.Environment = []string{}
	if env, _ := d.applicationEnvironment(); env["SECRET_KEY"] != "" {
		t.Errorf("secrets.environment [] still gives SECRET_KEY")
	}
}

// TestLaunchersReadTheEnvironmentWhole runs the launchers' environment
// code with Python on an environment file of hostile values: every value
// reaches os.environ byte for byte, and DJANGO_STATIC_ROOT is the static/
// folder of the release whose Python runs it.
func TestLaunchersReadTheEnvironmentWhole(t *testing.T) {
	python := testenv.Command(t, "python3", "python3")
	values := map[string]string{
		"PLAIN": "value", "QUOTES": `it's "quoted"`, "NEWLINES": "line one\nline two\r\n",
		"SHELL": "$(touch /tmp/djship-pwned) `id` ; rm -rf /", "UNICODE": "Grüße ✓", "PERCENT": "100% %(chdir) %n",
		"EQUALS": "a=b=c", "BACKSLASH": `C:\path\`,
	}
	data, err := templates.RenderEnvironment(values)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "environment.json")
	os.WriteFile(file, data, 0o600)
	// The launchers' first part, then print what they set.
	loader := strings.SplitN(templates.ManageLauncher, "os.execv(", 2)[0]
	program := loader + "\nprint(json.dumps({k: os.environ[k] for k in os.environ if k.isupper()}))\n"
	cmd := exec.Command(python, "-c", program)
	cmd.Env = []string{"DJSHIP_ENVIRONMENT=" + file, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for k, v := range values {
		if got[k] != v {
			t.Errorf("%s reached Python as %q, want %q", k, got[k], v)
		}
	}
	prefix, _ := exec.Command(python, "-c", "import os, sys; print(os.path.realpath(sys.prefix))").Output()
	if want := filepath.Join(filepath.Dir(strings.TrimSpace(string(prefix))), "static"); got["DJANGO_STATIC_ROOT"] != want {
		t.Errorf("DJANGO_STATIC_ROOT = %q, want %q", got["DJANGO_STATIC_ROOT"], want)
	}
	if _, err := os.Stat("/tmp/djship-pwned"); err == nil {
		t.Error("a value ran as a command")
	}

	// A gunicorn master re-executed on USR2 starts with the old master's
	// environment: what the last load set, and the old release's values.
	cmd = exec.Command(python, "-c", program)
	cmd.Env = []string{"DJSHIP_ENVIRONMENT=" + file, "PATH=/usr/bin:/bin", "DJSHIP_ENVIRONMENT_NAMES=REMOVED PLAIN", "REMOVED=old",
		"PLAIN=old", "DJSHIP_REVISION=v1", "DJANGO_STATIC_ROOT=/srv/www/shop/releases/v1/static"}
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got = nil
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, ok := got["REMOVED"]; ok || got["PLAIN"] != "value" || got["DJSHIP_REVISION"] != "" || strings.Contains(got["DJANGO_STATIC_ROOT"], "/v1/") {
		t.Errorf("after a re-execution: REMOVED=%q PLAIN=%q DJSHIP_REVISION=%q DJANGO_STATIC_ROOT=%q", got["REMOVED"], got["PLAIN"], got["DJSHIP_REVISION"], got["DJANGO_STATIC_ROOT"])
	}

	cmd = exec.Command(python, "-c", loader)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "DJSHIP_ENVIRONMENT names no environment file") {
		t.Errorf("without DJSHIP_ENVIRONMENT: %v %s", err, out)
	}
}

func TestPickHost(t *testing.T) {
	env := &sites.Environment{Name: "production", Hosts: []sites.Host{{Address: "www1.example.com", User: "deploy"}, {Address: "www2.example.com", User: "deploy", Port: 2222}}}
	for name, want := range map[string]string{"": "deploy@www1.example.com", "www2.example.com": "deploy@www2.example.com:2222", "deploy@www2.example.com:2222": "deploy@www2.example.com:2222"} {
		h, err := pickHost(env, name)
		if err != nil || h.String() != want {
			t.Errorf("pickHost(%q) = %s, %v; want %s", name, h, err, want)
		}
	}
	if _, err := pickHost(env, "www3"); err == nil || !strings.Contains(err.Error(), "choose one of deploy@www1.example.com, deploy@www2.example.com:2222") {
		t.Errorf("an unknown host: %v", err)
	}
}
