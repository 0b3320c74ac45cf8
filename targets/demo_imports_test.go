package targets

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// importsScript prints, as JSON, every module that the Python files under
// argv[1] import (the first name of each import statement, anywhere in
// the file) with where the interpreter finds it. Relative imports and the
// project's own modules and packages (beside manage.py) are left out.
const importsScript = `
import ast, importlib.util, json, os, sys

src = sys.argv[1]
own = set()
for name in os.listdir(src):
    if name.endswith(".py"):
        own.add(name[:-3])
    elif os.path.isfile(os.path.join(src, name, "__init__.py")):
        own.add(name)

found = []
for folder, dirs, files in os.walk(src):
    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
    for f in sorted(files):
        if not f.endswith(".py"):
            continue
        path = os.path.join(folder, f)
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read(), path)
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
        for name in sorted(names - own):
            spec = importlib.util.find_spec(name)
            origin = ""
            if spec is not None:
                origin = spec.origin or ""
                if origin in ("", "namespace") and spec.submodule_search_locations:
                    origin = list(spec.submodule_search_locations)[0]
            found.append({
                "file": os.path.relpath(path, src),
                "module": name,
                "stdlib": name in sys.stdlib_module_names,
                "found": spec is not None,
                "origin": origin,
            })
print(json.dumps(found))
`

// pyImport is one module a file of the project imports.
type pyImport struct {
	File   string `json:"file"`
	Module string `json:"module"`
	Stdlib bool   `json:"stdlib"`
	Found  bool   `json:"found"`
	// Origin is the module's file or folder, or built-in or frozen.
	Origin string `json:"origin"`
}

// TestDemoInstallsWhatTheExampleImports proves the fresh-machine path of
// the demo: every module the example project imports is its own, or comes
// from a Debian package that provisioning installs (the site's packages:
// and those djship always installs) or one they depend on. The Python
// standard library counts as what its Debian package provides, so that a
// part Debian ships apart (tkinter, distutils) is caught too.
func TestDemoInstallsWhatTheExampleImports(t *testing.T) {
	testenv.EndToEnd(t) // builds a virtualenv per case: the full test command runs it
	for _, c := range []struct {
		name string
		// change alters a copy of the repository; nil checks it as it is.
		change func(t *testing.T, repo string)
		want   []string
	}{
		{name: "the example as it ships"},
		{
			name: "python3-django left out of packages:",
			change: func(t *testing.T, repo string) {
				p := filepath.Join(repo, DemoSite)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(data), "\npackages: [python3-django]\n") {
					t.Fatalf("%s does not list packages: [python3-django]: change the test along with it", DemoSite)
				}
				write(t, p, strings.Replace(string(data), "\npackages: [python3-django]\n", "\npackages: []\n", 1))
			},
			want: []string{"example/manage.py imports django from python3-django, which the demo does not install: add it to packages: in sites/example.yaml (also imported by 7 more files)"},
		},
		{
			name: "a module no package provides",
			change: func(t *testing.T, repo string) {
				write(t, filepath.Join(repo, "example", "notes", "markup.py"), "import os\n\ndef render(text):\n    import djship_no_such_module\n    return djship_no_such_module.render(text)\n")
			},
			want: []string{"example/notes/markup.py imports djship_no_such_module, which /usr/bin/python3 cannot find"},
		},
		{
			// Whether python3-tk is installed here or not, the demo lacks it.
			name: "a part of the standard library that Debian ships apart",
			change: func(t *testing.T, repo string) {
				write(t, filepath.Join(repo, "example", "notes", "gui.py"), "from tkinter import ttk\n")
			},
			want: []string{"example/notes/gui.py imports tkinter"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			siteFile := filepath.Join("..", DemoSite)
			if c.change != nil {
				repo := t.TempDir()
				copyTree(t, filepath.Join("..", "example"), filepath.Join(repo, "example"))
				data, err := os.ReadFile(siteFile)
				if err != nil {
					t.Fatal(err)
				}
				siteFile = filepath.Join(repo, DemoSite)
				write(t, siteFile, string(data))
				c.change(t, repo)
			}
			site, err := sites.Load(siteFile)
			if err != nil {
				t.Fatal(err)
			}
			got, checked := demoImportProblems(t, site)
			if !checked["django"] || !checked["json"] {
				t.Fatalf("the check did not see the example import django and json, only %v", checked)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d:\n  %s\nwant it to start with:\n  %s", i, got[i], c.want[i])
				}
			}
		})
	}
}

// demoImportProblems says, one line per module, what the example's
// Python files import that a fresh machine provisioned for the site's
// demo environment would lack; checked holds every module it looked at.
func demoImportProblems(t *testing.T, site *sites.Site) (problems []string, checked map[string]bool) {
	t.Helper()
	env, err := site.Environment(DemoEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := env.Settings
	if s.Source.Path == "" {
		t.Fatalf("%s: the demo's source is not a folder of the repository", site.File)
	}
	python := testenv.Command(t, s.Python, "python3")
	testenv.Command(t, "dpkg", "dpkg")
	testenv.Command(t, "apt-cache", "apt")
	src := filepath.Join(site.Root, s.Source.Path, s.Django.SourceFolder)
	rel, err := filepath.Rel(site.Root, src)
	if err != nil {
		t.Fatal(err)
	}
	siteFile := site.File
	if abs, err := filepath.Abs(site.File); err == nil {
		if r, err := filepath.Rel(site.Root, abs); err == nil {
			siteFile = filepath.ToSlash(r)
		}
	}

	// -I: neither the user's site-packages nor the current folder, which
	// a host's virtualenv would not see either.
	cmd := exec.Command(python, "-I", "-c", importsScript, src)
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s reading the imports of %s: %v\n%s", python, src, err, stderrOf(err))
	}
	var imports []pyImport
	if err := json.Unmarshal(out, &imports); err != nil {
		t.Fatalf("the imports of %s: %v\n%s", src, err, out)
	}

	var files []string
	seen := map[string]bool{}
	for _, im := range imports {
		if im.Found && filepath.IsAbs(im.Origin) && !seen[im.Origin] {
			seen[im.Origin] = true
			files = append(files, im.Origin)
		}
	}
	owner := debianOwners(t, files)

	var pkgs []string
	for _, h := range env.Hosts {
		pkgs = append(pkgs, NewDeploy(site, env, h.Settings, nil, nil).packages()...)
	}
	installed := aptClosure(t, pkgs)

	// One line per module: the first file that imports it, and how many
	// more do.
	type problem struct {
		text string
		more int
	}
	var order []string
	byModule := map[string]*problem{}
	checked = map[string]bool{}
	for _, im := range imports {
		checked[im.Module] = true
		file := filepath.ToSlash(filepath.Join(rel, im.File))
		if p, ok := byModule[im.Module]; ok {
			p.more++
			continue
		}
		var text string
		switch {
		case !im.Found && im.Stdlib:
			text = fmt.Sprintf("%s imports %s, a part of Python's standard library that %s cannot find: Debian ships it in a package of its own; add that package to packages: in %s", file, im.Module, python, siteFile)
		case !im.Found:
			text = fmt.Sprintf("%s imports %s, which %s cannot find: no package installed here provides it; add the Debian package that does to packages: in %s", file, im.Module, python, siteFile)
		case !filepath.IsAbs(im.Origin):
			continue // built into the interpreter, or frozen in it
		case owner[im.Origin] == nil:
			text = fmt.Sprintf("%s imports %s from %s, which no Debian package provides, so a fresh machine lacks it: use its Debian package (packages: in %s)", file, im.Module, im.Origin, siteFile)
		case !anyOf(owner[im.Origin], installed):
			text = fmt.Sprintf("%s imports %s from %s, which the demo does not install: add it to packages: in %s", file, im.Module, strings.Join(owner[im.Origin], " or "), siteFile)
		case !s.Django.SystemSitePackages && !im.Stdlib:
			text = fmt.Sprintf("%s imports %s from %s, which the release's virtualenv does not see: set django.system_site_packages: true in %s", file, im.Module, strings.Join(owner[im.Origin], " or "), siteFile)
		default:
			continue
		}
		byModule[im.Module] = &problem{text: text}
		order = append(order, im.Module)
	}
	for _, m := range order {
		p := byModule[m]
		if p.more > 0 {
			p.text += fmt.Sprintf(" (also imported by %d more files)", p.more)
		}
		problems = append(problems, p.text)
	}
	sort.Strings(problems)
	return problems, checked
}

// debianOwners asks dpkg -S which packages installed each file.
func debianOwners(t *testing.T, files []string) map[string][]string {
	t.Helper()
	owner := map[string][]string{}
	if len(files) == 0 {
		return owner
	}
	// dpkg -S exits 1 when a file belongs to no package, which is an
	// answer, and says so on standard error.
	out, err := exec.Command("dpkg", append([]string{"-S"}, files...)...).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("dpkg -S: %v\n%s", err, stderrOf(err))
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "diversion by ") {
			continue
		}
		names, file, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		for _, n := range strings.Split(names, ", ") {
			n, _, _ = strings.Cut(n, ":") // libpython3.11-stdlib:amd64
			owner[file] = append(owner[file], n)
		}
	}
	return owner
}

// aptClosure returns pkgs with every package they depend on, through
// apt-cache depends --recurse: what apt-get install pkgs installs on a
// fresh machine (each alternative counted).
func aptClosure(t *testing.T, pkgs []string) map[string]bool {
	t.Helper()
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, pkgs...)
	out, err := exec.Command("apt-cache", args...).Output()
	if err != nil {
		testenv.Missing(t, "apt's package lists for "+strings.Join(pkgs, " "), fmt.Sprintf("apt-get update (apt-cache depends: %v: %s)", err, strings.TrimSpace(stderrOf(err))))
	}
	closure := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if _, after, ok := strings.Cut(l, ": "); ok {
			l = after // Depends: python3, |Depends: media-types
		}
		l = strings.Trim(l, "<>") // a virtual package
		l, _, _ = strings.Cut(l, ":")
		if l != "" {
			closure[l] = true
		}
	}
	return closure
}

func anyOf(names []string, set map[string]bool) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

// stderrOf is the standard error of a command that Output ran.
func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}
