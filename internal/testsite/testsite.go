// Package testsite makes the Django projects the tests package and ship:
// a project root with a site file and a copy of the example project. The
// release side's tests and the host side's share it.
package testsite

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/sites"
)

// Project makes a project root in a temporary folder: sites/shop.yaml
// with the given extra YAML lines, and src/ holding a copy of the example
// Django project. It returns the site and src/.
func Project(t *testing.T, extra string) (*sites.Site, string) {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	CopyTree(t, Example(t), src)
	return WriteSite(t, root, "shop", SiteYAML+extra), src
}

// SiteYAML is the site file Project writes before its extra lines: the
// example project in src/, one production host.
const SiteYAML = `project: shop
url: shop.example.com
root: /srv/www
source:
  path: src
django: {source_folder: ., settings_folder: exampleproject, settings_module: exampleproject.settings}
environments:
  production: {hosts: [deploy@shop.example.com]}
`

// Example is the example Django project of the repository: example/ at
// the top of the module that holds the test's folder.
func Example(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "example")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// WriteSite writes a site file into the project's sites/ and loads it.
func WriteSite(t testing.TB, project, name, yaml string) *sites.Site {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(project, "sites"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(project, "sites", name+".yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	site, err := sites.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return site
}

// CopyTree copies the folder from to to, leaving out Python caches and
// SQLite databases.
func CopyTree(t testing.TB, from, to string) {
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

// Write writes the file p, making its folders.
func Write(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Getenv looks names up in env only: an environment for mage release
// that the test decides whole.
func Getenv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
