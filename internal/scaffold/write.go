package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// Module is djship's module path.
const Module = "github.com/djship/djship"

// Options tune Write.
type Options struct {
	// Version is the djship version the repository requires, e.g.
	// v0.4.0; with Replace set it may be empty.
	Version string
	// Replace, when set, is a djship checkout that go.mod points to
	// instead of the published module (replace directive).
	Replace string
	// Go runs go mod tidy once go.mod is written; "go" when empty.
	Go string
}

// File is one file Write made, and why.
type File struct {
	Path, Purpose string
}

// Write writes into the repository what djship needs: go.mod with Mage
// as a tool and djship required, magefiles/magefile.go importing djmage,
// sites/<name>.yaml with what Detect found, dist/ in .gitignore, and a CI
// example; then go mod tidy fills go.sum. It writes no file that exists
// (it says which and what to do instead), except .gitignore, to which it
// adds dist/ when missing.
func Write(p Project, opts Options) ([]File, error) {
	if opts.Version == "" && opts.Replace == "" {
		return nil, errors.New("no djship version to require: run the published djship-init (go run github.com/djship/djship/cmd/djship-init@latest), or pass -replace with a djship checkout")
	}
	if opts.Go == "" {
		opts.Go = "go"
	}
	version := opts.Version
	if version == "" {
		version = "v0.0.0-00010101000000-000000000000"
	}
	site := filepath.Join("sites", p.Name+".yaml")
	files := []struct {
		File
		text string
	}{
		{File{"go.mod", "the Go module: Mage as a tool, djship required"}, goMod(p, version, opts.Replace)},
		{File{filepath.Join("magefiles", "magefile.go"), "the targets: djship's djmage, imported"}, magefile(p)},
		{File{site, "the site: detected values, comments for the rest"}, siteFile(p)},
		{File{filepath.Join(".github", "workflows", "djship.yml"), "a CI example: mage ship:production with DJSHIP_AGE_KEY"}, ciExample},
	}
	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(p.Root, f.Path)); err == nil {
			exist = append(exist, f.Path)
		}
	}
	if len(exist) > 0 {
		verb := "exists"
		if len(exist) > 1 {
			verb = "exist"
		}
		return nil, fmt.Errorf("%s %s already in %s, and djship-init overwrites nothing: move it away and run again, or add what it lacks by hand (the README's \"Use djship in your Django repository\" shows each file)", strings.Join(exist, ", "), verb, p.Root)
	}
	var written []File
	for _, f := range files {
		path := filepath.Join(p.Root, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(path, []byte(f.text), 0o644); err != nil {
			return written, err
		}
		written = append(written, f.File)
	}
	added, err := ignoreDist(p.Root)
	if err != nil {
		return written, err
	}
	if added {
		written = append(written, File{".gitignore", "dist/ added: the tarballs mage release writes"})
	}
	tidy := exec.Command(opts.Go, "mod", "tidy")
	tidy.Dir = p.Root
	if out, err := tidy.CombinedOutput(); err != nil {
		return written, fmt.Errorf("go mod tidy in %s: %w\n%s", p.Root, err, out)
	}
	return append(written, File{"go.sum", "the modules' checksums (go mod tidy)"}), nil
}

// ignoreDist adds dist/ to .gitignore unless a line ignores it already.
func ignoreDist(root string) (bool, error) {
	path := filepath.Join(root, ".gitignore")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		switch strings.TrimSpace(l) {
		case "dist", "dist/", "/dist", "/dist/":
			return false, nil
		}
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	data = append(data, "# The release tarballs of mage release.\n/dist/\n"...)
	return true, os.WriteFile(path, data, 0o644)
}

func goMod(p Project, version, replace string) string {
	s := fmt.Sprintf("module %s\n\ngo 1.26\n\ntool github.com/magefile/mage\n\nrequire %s %s\n", p.Name, Module, version)
	if replace != "" {
		s += fmt.Sprintf("\nreplace %s => %s\n", Module, replace)
	}
	return s
}

func magefile(p Project) string {
	return fmt.Sprintf(`//go:build mage

// The targets of %s: djship packages the Django project and ships it to
// the hosts of sites/%s.yaml. go tool mage -l lists them.
package main

import (
	//mage:import
	_ "github.com/djship/djship/djmage"
)
`, p.Name, p.Name)
}

var siteTemplate = template.Must(template.New("site").Parse(`# The site {{.Name}}, written by djship-init. Fill in url and the hosts of
# each environment, then run go tool mage check. The README's "Site file"
# reference explains every key and its default.

# Names the folders, configuration files and certificates on the hosts.
project: {{.Name}}
# The public host name the web server answers to.
url: www.example.com
# The folder on the hosts that holds the sites: this one lives in /srv/www/{{.Name}}.
root: /srv/www

source:
  # The repository itself, without djship's own files.
  path: .
  exclude: ["/magefiles/", "/sites/", "/go.mod", "/go.sum", "/.github/"]

django:
  # The folder holding manage.py.
  source_folder: {{.DjangoFolder}}
  # The package holding wsgi.py.
  settings_folder: {{.SettingsFolder}}
  # The settings module manage.py sets.
  settings_module: {{.SettingsModule}}
{{- if .Requirements}}
  # Install requirements.txt into the release's virtualenv{{if .Django}} ({{.Django}}){{end}}.
  pip_install_requirements: true
{{- else}}
  # No requirements.txt beside manage.py: list the pip requirements here.
  dependencies: []
{{- end}}
  # true lets the virtualenv see Debian's Python packages (packages: [python3-django]).
  system_site_packages: false
  # Environment variables of the application (secrets go in the secrets).
  environment:
    DJANGO_ALLOWED_HOSTS: www.example.com

# nginx or apache2, in front of uwsgi or gunicorn.
webserver: nginx
app_server: gunicorn
# self-signed, a PEM certificate of this repository, or leave out for plain HTTP.
tls: {certificate: self-signed}
# sqlite (a file in shared/db/ on the host) or postgres (name, user, host, port,
# password_secret).
database: {engine: sqlite}

secrets:
  # The secret values the application needs; mage secrets:edit <environment>
  # keeps them encrypted beside this file.
  keys: [SECRET_KEY]
  # Who may read them: age public keys (age1...) and SSH public keys.
  recipients: []

environments:
  production:
    hosts: [deploy@www.example.com]
  staging:
    url: staging.example.com
    django:
      environment:
        DJANGO_ALLOWED_HOSTS: staging.example.com
    hosts: [deploy@staging.example.com]
`))

func siteFile(p Project) string {
	var b bytes.Buffer
	if err := siteTemplate.Execute(&b, p); err != nil {
		panic(err) // the template and Project are fixed
	}
	return b.String()
}

const ciExample = `# Ships the main branch to production with djship. The repository's
# secrets: DJSHIP_AGE_KEY, an age identity among the site's
# secrets.recipients; DJSHIP_SSH_KEY, a private key the hosts accept. Keep
# the hosts' keys in the repository (ssh.known_hosts in the site file).
name: ship
on:
  push:
    branches: [main]
jobs:
  production:
    runs-on: ubuntu-latest
    environment: production
    concurrency: production
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version-file: go.mod
      - name: SSH key
        env:
          DJSHIP_SSH_KEY: ${{ secrets.DJSHIP_SSH_KEY }}
        run: install -m 700 -d ~/.ssh && printf '%s\n' "$DJSHIP_SSH_KEY" > ~/.ssh/id_ed25519 && chmod 600 ~/.ssh/id_ed25519
      - name: Ship
        env:
          DJSHIP_AGE_KEY: ${{ secrets.DJSHIP_AGE_KEY }}
        run: go tool mage ship:production
`
