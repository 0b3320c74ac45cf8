// Package scaffold adopts djship in an existing Django repository: it
// finds the Django project (manage.py, the settings module, the package
// that holds wsgi.py, requirements.txt) and writes the files a
// repository needs to run djship's targets: go.mod, a magefile that
// imports djmage, a site file, dist/ in .gitignore and a CI example.
package scaffold

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Project is what Detect found out about a Django repository.
type Project struct {
	// Root is the repository.
	Root string
	// Name is the project name for the site file: lower-case letters,
	// digits, - and _.
	Name string
	// DjangoFolder is the folder of manage.py, relative to Root ("." at
	// the top).
	DjangoFolder string
	// SettingsModule is the settings module manage.py sets, e.g.
	// mysite.settings.
	SettingsModule string
	// SettingsFolder is the package that holds wsgi.py, e.g. mysite.
	SettingsFolder string
	// Requirements reports whether requirements.txt is beside manage.py
	// or at the top of the repository.
	Requirements bool
	// Django is the Django requirement requirements.txt names, e.g.
	// "Django>=4.2,<5", or "" when it names none.
	Django string
}

// skipped are folders that never hold the project's manage.py.
var skipped = map[string]bool{
	".git": true, ".hg": true, "node_modules": true, "venv": true, ".venv": true, "env": true,
	"dist": true, "magefiles": true, "__pycache__": true, "site-packages": true, ".tox": true,
}

var (
	settingsDefault = regexp.MustCompile(`DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][A-Za-z0-9_.]*)["']`)
	djangoLine      = regexp.MustCompile(`(?i)^\s*django\s*([<>=!~][^#;]*)?`)
	notName         = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// Detect finds the Django project in a repository: the one manage.py at
// most three folders deep, the settings module it sets, the package of
// wsgi.py and requirements.txt beside it.
func Detect(root string) (Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Project{}, err
	}
	p := Project{Root: abs}
	var found []string
	err = filepath.WalkDir(abs, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, path)
		if e.IsDir() {
			if path != abs && (skipped[e.Name()] || strings.Count(rel, string(filepath.Separator)) >= 3) {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Name() == "manage.py" {
			found = append(found, filepath.Dir(rel))
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("looking for manage.py in %s: %w", abs, err)
	}
	switch len(found) {
	case 0:
		return p, fmt.Errorf("no manage.py in %s or three folders below it: run djship-init in the repository of a Django project", abs)
	case 1:
	default:
		sort.Strings(found)
		return p, fmt.Errorf("%s holds %d Django projects (manage.py in %s): pass the one to ship with -django FOLDER", abs, len(found), strings.Join(found, ", "))
	}
	return p, p.inspect(filepath.ToSlash(found[0]))
}

// DetectIn is Detect with the Django folder given, relative to root.
func DetectIn(root, django string) (Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Project{}, err
	}
	p := Project{Root: abs}
	return p, p.inspect(filepath.ToSlash(filepath.Clean(django)))
}

// inspect reads manage.py, wsgi.py and requirements.txt of the Django
// folder (or the repository's, at its top).
func (p *Project) inspect(folder string) error {
	p.DjangoFolder = folder
	dir := filepath.Join(p.Root, folder)
	manage, err := os.ReadFile(filepath.Join(dir, "manage.py"))
	if err != nil {
		return fmt.Errorf("reading manage.py: %w", err)
	}
	m := settingsDefault.FindSubmatch(manage)
	if m == nil {
		return fmt.Errorf("%s sets no DJANGO_SETTINGS_MODULE (os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", ...)): write django.settings_module in the site file yourself", filepath.Join(dir, "manage.py"))
	}
	p.SettingsModule = string(m[1])
	p.SettingsFolder = wsgiPackage(dir, p.SettingsModule)
	if p.SettingsFolder == "" {
		return fmt.Errorf("no wsgi.py in a package of %s: write django.settings_folder (the package that holds wsgi.py) in the site file yourself", dir)
	}
	p.Name = projectName(p.SettingsFolder, p.Root)
	req, err := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		req, err = os.ReadFile(filepath.Join(p.Root, "requirements.txt"))
	}
	if err == nil {
		p.Requirements = true
		for _, l := range strings.Split(string(req), "\n") {
			if m := djangoLine.FindStringSubmatch(l); m != nil && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(l)), "django-") && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(l)), "django_") {
				p.Django = strings.TrimSpace(l)
				break
			}
		}
	}
	return nil
}

// wsgiPackage is the package beside manage.py that holds wsgi.py: the
// settings module's top package when it does, else the only one that
// does, else "".
func wsgiPackage(dir, settings string) string {
	top, _, _ := strings.Cut(settings, ".")
	if _, err := os.Stat(filepath.Join(dir, top, "wsgi.py")); err == nil {
		return top
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "wsgi.py"))
	if len(matches) == 1 {
		return filepath.Base(filepath.Dir(matches[0]))
	}
	return ""
}

// genericPackages are settings packages named after their role, not the
// project: the repository's folder names the project better.
var genericPackages = map[string]bool{"config": true, "core": true, "project": true, "settings": true, "app": true,
	"web": true, "site": true, "main": true, "src": true, "backend": true, "django": true}

// projectName makes a site's project name of the settings package, or of
// the repository's folder when the package is a generic name.
func projectName(pkg, root string) string {
	name := strings.ToLower(pkg)
	if genericPackages[name] {
		name = strings.ToLower(filepath.Base(root))
	}
	name = strings.Trim(notName.ReplaceAllString(name, "-"), "-_")
	if len(name) > 32 {
		name = strings.Trim(name[:32], "-_")
	}
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= '0' && name[0] <= '9') {
		name = "site" + name
	}
	return name
}
