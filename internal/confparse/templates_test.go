package confparse

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldenpkg "github.com/djship/djship/internal/golden"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/templates"
)

// templateGoldens are the files the templates package renders, with the
// parser that reads each.
var templateGoldens = []struct {
	file  string
	parse func([]byte) ([]Directive, error)
}{
	{"nginx-uwsgi-tls.conf", Nginx},
	{"nginx-gunicorn-plain.conf", Nginx},
	{"apache2-uwsgi-tls.conf", Apache},
	{"apache2-gunicorn-plain.conf", Apache},
	{"uwsgi.ini", UWSGIIni},
	{"gunicorn.service", SystemdUnit},
	{"gunicorn.socket", SystemdUnit},
}

// TestTemplateGoldens parses every rendered configuration file of
// templates/testdata and compares the directives with testdata/<file>.txt
// (go test ./internal/confparse -update rewrites them), and the init
// script's shape with testdata/gunicorn.init.txt.
func TestTemplateGoldens(t *testing.T) {
	for _, g := range templateGoldens {
		t.Run(g.file, func(t *testing.T) {
			ds, err := g.parse(golden(t, g.file))
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, g.file+".txt", strings.Join(render(ds), "\n")+"\n")
		})
	}
	t.Run("gunicorn.init", func(t *testing.T) {
		shape, err := ShellShape(golden(t, "gunicorn.init"))
		if err != nil {
			t.Fatal(err)
		}
		compareGolden(t, "gunicorn.init.txt", shape.String()+"\n")
	})
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenpkg.Check(t, filepath.Join("testdata", name), []byte(got))
}

// TestTemplateGoldensAgainstServers asks the servers about the rendered
// files where they can be asked without installing them: httpd -t with
// mod_info, uwsgi --show-config, systemd-analyze verify, dash -n.
func TestTemplateGoldensAgainstServers(t *testing.T) {
	t.Run("apache2-gunicorn-plain.conf", func(t *testing.T) {
		apacheAgrees(t, testenv.Command(t, "apache2", "apache2"), string(golden(t, "apache2-gunicorn-plain.conf")))
	})
	t.Run("apache2-uwsgi-tls.conf", func(t *testing.T) {
		apache2 := testenv.Command(t, "apache2", "apache2")
		// mod_ssl reads the certificate and key when it loads the
		// configuration: point the file at a pair made here, on the
		// same lines.
		dir := tempDir(t)
		writeCertificate(t, filepath.Join(dir, "shop.crt"), filepath.Join(dir, "shop.key"))
		text := strings.ReplaceAll(string(golden(t, "apache2-uwsgi-tls.conf")), "/etc/nginx/ssl/", dir+"/")
		apacheAgrees(t, apache2, text)
	})
	t.Run("uwsgi.ini", func(t *testing.T) {
		uwsgiAgrees(t, testenv.Command(t, "uwsgi", "uwsgi uwsgi-plugin-python3"), string(golden(t, "uwsgi.ini")), nil)
	})
	for _, unit := range []string{"service", "socket"} {
		t.Run("gunicorn."+unit, func(t *testing.T) {
			// The unit's commands are not on this machine: verify fails
			// for them, after it has loaded and dumped the unit.
			systemdAgrees(t, testenv.Command(t, "systemd-analyze", "systemd"), "gunicorn-shop."+unit, string(golden(t, "gunicorn."+unit)), false)
		})
	}
	t.Run("gunicorn.init", func(t *testing.T) {
		dash := testenv.Command(t, "dash", "dash")
		script := golden(t, "gunicorn.init")
		cmd := exec.Command(dash, "-n")
		cmd.Stdin = bytes.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dash -n: %v\n%s", err, out)
		}
		for value, want := range map[string]string{
			"/srv/www/shop/current/src":      "assign SRC",
			"/srv/www/shop/environment.json": "assign DJSHIP_ENVIRONMENT",
			"/run/gunicorn-shop":             "assign RUNDIR",
		} {
			landed, err := ShellLanded(script, value)
			if err != nil {
				t.Fatal(err)
			}
			if len(landed) != 1 || !landed[0].Whole || landed[0].Kind+" "+landed[0].Command != want {
				t.Errorf("%q landed in %+v, want one whole word of %s", value, landed, want)
			}
		}
	})
}

// writeCertificate writes a self-signed certificate and its key.
func writeCertificate(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "shop.example.com"},
		DNSNames:     []string{"shop.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// site is a site with harmless values.
func site() templates.Site {
	return templates.Site{
		Project: "shop", ID: "shop", URL: "shop.example.com", Base: "/srv/www/shop",
		Src: "/srv/www/shop/current/src", Venv: "/srv/www/shop/current/venv",
		WebUser: "www-data", WebGroup: "www-data", AppUser: "shop", AppGroup: "shop",
		HTTPPort: 80, HTTPSPort: 443, TLS: true,
		CertFile: "/etc/nginx/ssl/shop.crt", KeyFile: "/etc/nginx/ssl/shop.key",
		ClientMaxBodySize: "30m", AppServer: "uwsgi",
		Socket: "/run/uwsgi/app/shop/socket", RunDir: "/run/gunicorn-shop",
		SettingsFolder:  "shop",
		EnvironmentFile: "/srv/www/shop/environment.json",
		Workers:         3, Timeout: 60,
		Launcher: templates.GunicornLauncherPath,
	}
}

// structure is what must not change when only values do: each
// directive's path, its number of words, whether it opens a block and
// whether it expands.
func structure(ds []Directive) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s/%d %v %v", d.Path(), d.Prefix, len(d.Args), d.Block, d.Expands))
	}
	return out
}

// TestRenderingsThroughTheParsers renders templates with one value
// changed and compares the structure the server would see with the
// harmless rendering's: every value either keeps the structure (the
// template escaped it) or is refused by the template; none may change it.
func TestRenderingsThroughTheParsers(t *testing.T) {
	for _, c := range []struct {
		name, template string
		change         func(*templates.Site)
		want           string // "same" or "refused"
	}{
		{"nginx: another host name", templates.NginxSite, func(s *templates.Site) { s.URL = "www.example.org" }, "same"},
		{"nginx: a host name with ; and a block", templates.NginxSite, func(s *templates.Site) { s.URL = "x; location /x { alias /etc/; }" }, "refused"},
		{"nginx: a base with # ", templates.NginxSite, func(s *templates.Site) { s.Base = "/srv #" }, "refused"},
		{"nginx: a base with a quote", templates.NginxSite, func(s *templates.Site) { s.Base = `/srv/"x` }, "refused"},
		{"apache: a base with a space", templates.Apache2Site, func(s *templates.Site) { s.Base = "/srv/a b" }, "refused"},
		{"apache: a host name ending in a backslash", templates.Apache2Site, func(s *templates.Site) { s.URL = `x\` }, "refused"},
		{"uwsgi: a folder with a newline", templates.UWSGIApp, func(s *templates.Site) { s.Src = "/srv\nplugins = evil" }, "refused"},
		{"uwsgi: an environment file with % and ;", templates.UWSGIApp, func(s *templates.Site) { s.EnvironmentFile = "/srv/100% ; #x %n/environment.json" }, "same"},
		// uWSGI has no escape for %( (%%( is still an option reference).
		{"uwsgi: an environment file with %(", templates.UWSGIApp, func(s *templates.Site) { s.EnvironmentFile = "/srv/%(chdir)/environment.json" }, "refused"},
		{"systemd: an environment file with quotes, % and $", templates.GunicornUnit, func(s *templates.Site) { s.EnvironmentFile = "/srv/a\" B=\"c %n $HOME" }, "same"},
		{"systemd: an environment file with a newline", templates.GunicornUnit, func(s *templates.Site) { s.EnvironmentFile = "/srv/a\nExecStart=/bin/sh" }, "refused"},
		{"systemd: a folder with a space", templates.GunicornUnit, func(s *templates.Site) { s.Src = "/srv/a b" }, "refused"},
		{"systemd: a folder with a specifier", templates.GunicornUnit, func(s *templates.Site) { s.Src = "/srv/%n" }, "refused"},
		{"shell: an environment file with quotes and $(", templates.GunicornInit, func(s *templates.Site) { s.EnvironmentFile = `/srv/it's "$(id)" ; x` }, "same"},
		{"shell: a folder with a command substitution", templates.GunicornInit, func(s *templates.Site) { s.Src = "/srv/$(id)" }, "same"},
		{"shell: a folder with a newline", templates.GunicornInit, func(s *templates.Site) { s.Src = "/srv\nid" }, "same"},
	} {
		t.Run(c.name, func(t *testing.T) {
			harmless := site()
			changed := site()
			c.change(&changed)
			var a, b []string
			for i, s := range []templates.Site{harmless, changed} {
				data, err := templates.Render(c.template, s)
				if err != nil {
					if i == 0 {
						t.Fatal(err)
					}
					if c.want != "refused" {
						t.Fatalf("refused, want %s: %v", c.want, err)
					}
					return
				}
				var got []string
				switch c.template {
				case templates.GunicornInit:
					shape, err := ShellShape(data)
					if err != nil {
						got = []string{err.Error()}
					}
					got = append(got, shape...)
				default:
					parse := map[string]func([]byte) ([]Directive, error){
						templates.NginxSite: Nginx, templates.Apache2Site: Apache,
						templates.UWSGIApp: UWSGIIni, templates.GunicornUnit: SystemdUnit,
					}[c.template]
					ds, err := parse(data)
					if err != nil {
						got = []string{err.Error()}
					}
					got = append(got, structure(ds)...)
				}
				if i == 0 {
					a = got
				} else {
					b = got
				}
			}
			if c.want == "refused" {
				t.Fatalf("rendered, want refused")
			}
			if strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Errorf("the structure changed\n--- harmless\n%s\n--- changed\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}
