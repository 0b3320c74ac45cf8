package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/sites"
)

// repo writes files (path → content) into a new folder.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Shop_Site")
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const manage = `#!/usr/bin/env python
import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", %q)
`

func managePy(module string) string {
	return strings.Replace(manage, "%q", `"`+module+`"`, 1)
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  Project
		fail  string
	}{
		{
			name:  "manage.py at the top",
			files: map[string]string{"manage.py": managePy("shop.settings"), "shop/wsgi.py": "", "shop/settings.py": ""},
			want:  Project{Name: "shop", DjangoFolder: ".", SettingsModule: "shop.settings", SettingsFolder: "shop"},
		},
		{
			name: "manage.py in src/ with a settings package and requirements",
			files: map[string]string{"src/manage.py": managePy("config.settings.production"), "src/config/wsgi.py": "",
				"src/requirements.txt": "django-environ==0.11\nwhitenoise\nDjango>=4.2,<5  # LTS\n"},
			want: Project{Name: "shop_site", DjangoFolder: "src", SettingsModule: "config.settings.production", SettingsFolder: "config", Requirements: true, Django: "Django>=4.2,<5  # LTS"},
		},
		{
			name:  "wsgi.py in a package other than the settings'",
			files: map[string]string{"manage.py": managePy("settings"), "web/wsgi.py": ""},
			want:  Project{Name: "shop_site", DjangoFolder: ".", SettingsModule: "settings", SettingsFolder: "web"},
		},
		{
			name:  "a virtualenv's manage.py does not count",
			files: map[string]string{"manage.py": managePy("shop.settings"), "shop/wsgi.py": "", ".venv/lib/x/manage.py": "", "node_modules/y/manage.py": ""},
			want:  Project{Name: "shop", DjangoFolder: ".", SettingsModule: "shop.settings", SettingsFolder: "shop"},
		},
		{name: "no manage.py", files: map[string]string{"README": ""}, fail: "no manage.py in"},
		{name: "two projects", files: map[string]string{"a/manage.py": managePy("a.settings"), "b/manage.py": managePy("b.settings")}, fail: "holds 2 Django projects (manage.py in a, b): pass the one to ship with -django FOLDER"},
		{name: "no settings module", files: map[string]string{"manage.py": "print(1)\n"}, fail: "sets no DJANGO_SETTINGS_MODULE"},
		{name: "no wsgi.py", files: map[string]string{"manage.py": managePy("shop.settings")}, fail: "no wsgi.py in a package"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := repo(t, c.files)
			got, err := Detect(root)
			if c.fail != "" {
				if err == nil || !strings.Contains(err.Error(), c.fail) {
					t.Fatalf("error %v, want one that says %q", err, c.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.want.Root = root
			if got != c.want {
				t.Errorf("Detect\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestProjectNameFollowsTheSiteGrammar(t *testing.T) {
	for pkg, want := range map[string]string{"shop": "shop", "MyShop": "myshop", "config": "shop_site", "x.y": "x-y", "_private": "private",
		"a_very_long_package_name_that_goes_on_and_on": "a_very_long_package_name_that_go"} {
		if got := projectName(pkg, "/repos/Shop_Site"); got != want {
			t.Errorf("projectName(%q) = %q, want %q", pkg, got, want)
		}
	}
}

func TestWriteMakesAValidSiteAndOverwritesNothing(t *testing.T) {
	root := repo(t, map[string]string{"src/manage.py": managePy("shop.settings"), "src/shop/wsgi.py": "", "src/requirements.txt": "Django==4.2.7\n", ".gitignore": "*.pyc"})
	p, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Write(p, Options{Version: "v0.9.0", Go: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Errorf("files: %v", files)
	}
	site, err := sites.Load(filepath.Join(root, "sites", "shop.yaml"))
	if err != nil {
		t.Fatalf("the site file does not load: %v", err)
	}
	d := site.Settings.Django
	if d.SourceFolder != "src" || d.SettingsModule != "shop.settings" || d.SettingsFolder != "shop" || !d.PipInstallRequirements || site.Settings.Source.Path != "." {
		t.Errorf("site settings: %+v, source %+v", d, site.Settings.Source)
	}
	if _, err := site.Environment("production"); err != nil {
		t.Error(err)
	}
	mod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	for _, want := range []string{"tool github.com/magefile/mage", "require github.com/djship/djship v0.9.0"} {
		if !strings.Contains(string(mod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, mod)
		}
	}
	magefile, _ := os.ReadFile(filepath.Join(root, "magefiles", "magefile.go"))
	if !strings.Contains(string(magefile), "//mage:import\n\t_ \"github.com/djship/djship/djmage\"") || !strings.HasPrefix(string(magefile), "//go:build mage\n") {
		t.Errorf("magefile:\n%s", magefile)
	}
	ignore, _ := os.ReadFile(filepath.Join(root, ".gitignore"))
	if string(ignore) != "*.pyc\n# The release tarballs of mage release.\n/dist/\n" {
		t.Errorf(".gitignore: %q", ignore)
	}

	// A second run changes nothing and says why.
	before, _ := os.ReadFile(filepath.Join(root, "sites", "shop.yaml"))
	os.WriteFile(filepath.Join(root, "sites", "shop.yaml"), append(before, "# edited\n"...), 0o644)
	if _, err := Write(p, Options{Version: "v0.9.0", Go: "true"}); err == nil || !strings.Contains(err.Error(), "go.mod, magefiles/magefile.go, sites/shop.yaml, .github/workflows/djship.yml exist already") {
		t.Fatalf("second run: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(root, "sites", "shop.yaml"))
	if !strings.HasSuffix(string(after), "# edited\n") {
		t.Error("the second run rewrote the site file")
	}
	if added, err := ignoreDist(root); added || err != nil {
		t.Errorf("dist/ added twice to .gitignore: %v %v", added, err)
	}
}

func TestWriteWithoutAVersionSaysWhatToDo(t *testing.T) {
	if _, err := Write(Project{Root: t.TempDir(), Name: "x"}, Options{}); err == nil || !strings.Contains(err.Error(), "cmd/djship-init@latest") {
		t.Fatalf("error: %v", err)
	}
}
