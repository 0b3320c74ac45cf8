// Package templates renders the files djship writes: configuration files
// for the host and the release manifest. Rendering is pure: the same data
// always gives the same bytes.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var all = template.Must(template.New("").Funcs(template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"nginx":        nginxWord,
	"apache":       apacheWord,
	"uwsgi":        uwsgiValue,
	"uwsgiOption":  uwsgiOption,
	"systemd":      systemdValue,
	"execArg":      systemdExecArg,
	"unit":         systemdWord,
	"shell":        shellWord,
	"shellComment": shellComment,
	"bytes":        sizeInBytes,
	"hostPort":     nginxHostPort,
}).ParseFS(files, "*.tmpl"))

// sizeInBytes turns an nginx size (30m, 512k, 1g, 100) into bytes.
func sizeInBytes(size string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(strings.ToLower(size), "k"):
		mult = 1 << 10
	case strings.HasSuffix(strings.ToLower(size), "m"):
		mult = 1 << 20
	case strings.HasSuffix(strings.ToLower(size), "g"):
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(size, "kKmMgG"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", size, err)
	}
	return n * mult, nil
}

// Render executes the named template with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := all.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Manifest describes a release; it is written as DJSHIP-MANIFEST.json at
// the top of every tarball and read back on the host.
type Manifest struct {
	// Project is the site's project name.
	Project string `json:"project"`
	// Revision is the value ${REVISION} expanded to.
	Revision string `json:"revision"`
	// Source says where the files came from: a path or a git repository,
	// with the commit.
	Source string `json:"source"`
	// Files is the number of regular files packaged.
	Files int `json:"files"`
	// FilesSHA256 hashes the list of packaged paths, modes and contents.
	FilesSHA256 string `json:"files_sha256"`
	// Created is the fixed time of every entry (RFC 3339).
	Created string `json:"created"`
}

// RenderManifest renders the release manifest as JSON.
func RenderManifest(m Manifest) ([]byte, error) {
	return Render("manifest.json.tmpl", m)
}

// Site is what the host configuration templates need to know about a
// site on one host.
type Site struct {
	// Project is the project name; ID is the same as a safe identifier.
	Project, ID string
	// URL is the public host name.
	URL string
	// Base is <root>/<project> on the host.
	Base string
	// Src, Venv are the Django folder and virtualenv through the link the
	// application server starts from: current, or uWSGI's slot link.
	Src, Venv string
	// WebUser, WebGroup, AppUser, AppGroup are the two identities.
	WebUser, WebGroup, AppUser, AppGroup string
	// HTTPPort, HTTPSPort are the ports the web server listens on.
	HTTPPort, HTTPSPort int
	// TLS turns HTTPS on; CertFile and KeyFile are the certificate's paths.
	TLS               bool
	CertFile, KeyFile string
	ClientMaxBodySize string
	AppServer         string
	Socket, RunDir    string
	SettingsFolder    string
	Workers, Timeout  int
	UWSGIOptions      []string
	// Launcher is the script that starts gunicorn (see GunicornLauncher).
	Launcher string
	// EnvironmentFile is the application's environment on the host, which
	// the launchers read (see launchers.go).
	EnvironmentFile string
}

// EnvVar is one environment variable of the application.
type EnvVar struct {
	Name, Value string
}

// Host configuration file names, as Render knows them.
const (
	NginxSite      = "nginx.conf.tmpl"
	Apache2Site    = "apache2.conf.tmpl"
	UWSGIApp       = "uwsgi.ini.tmpl"
	GunicornSocket = "gunicorn.socket.tmpl"
	GunicornUnit   = "gunicorn.service.tmpl"
	GunicornInit   = "gunicorn.init.tmpl"
	ProcessUnit    = "process.service.tmpl"
	ProcessInit    = "process.init.tmpl"
	BalancerSite   = "balancer.conf.tmpl"
)

// Balancer is what the load balancer's nginx site needs: the site's
// name and port, and the web hosts it passes requests to.
type Balancer struct {
	// Project names the site; ID is the upstream's name.
	Project, ID string
	// URL is the public host name.
	URL string
	// HTTPPort is the port the balancer listens on.
	HTTPPort int
	// ClientMaxBodySize is the largest request body passed on.
	ClientMaxBodySize string
	// Servers are the web hosts.
	Servers []Upstream
}

// Upstream is one web host behind the load balancer.
type Upstream struct {
	// Host is its address (a name or an IP address); Port its HTTP port.
	Host string
	Port int
	// Down takes it out of the balancer (while it switches).
	Down bool
}

// Process is what the process templates need: the site, and one of its
// processes.
type Process struct {
	Site
	// Name is the process's name in the site file; Unit its service's
	// name on the host (djship-<instance>-<name>).
	Name, Unit string
	// Command is the program and its arguments, as the launcher gets them.
	Command []string
}
