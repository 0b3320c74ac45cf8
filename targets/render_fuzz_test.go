package targets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/confparse"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
	"go.yaml.in/yaml/v3"
)

// fuzzSite builds a site file around hostile values, the way a user
// would write them (through YAML, so they arrive byte for byte). flags
// choose the web server, the application server, TLS and the database.
func fuzzSite(root, source, url, dbValue, env, user, option string, flags uint8) []byte {
	webserver, appServer := "nginx", "uwsgi"
	if flags&1 != 0 {
		webserver = "apache2"
	}
	if flags&2 != 0 {
		appServer = "gunicorn"
	}
	top := map[string]any{
		"project":    "shop",
		"url":        url,
		"root":       root,
		"source":     map[string]any{"path": "src"},
		"webserver":  webserver,
		"app_server": appServer,
		"django": map[string]any{
			"source_folder": source, "settings_folder": "shop", "settings_module": "shop.settings",
			"environment": map[string]any{"GREETING": env},
		},
		"environments": map[string]any{"production": map[string]any{"hosts": []any{"deploy@shop.example.com"}}},
	}
	if user != "" {
		top["app"] = map[string]any{"user": user}
	}
	if option != "" && appServer == "uwsgi" {
		app, _ := top["app"].(map[string]any)
		if app == nil {
			app = map[string]any{}
		}
		app["uwsgi_options"] = []any{option}
		top["app"] = app
	}
	if flags&4 != 0 {
		top["tls"] = map[string]any{"certificate": "self-signed"}
	}
	if flags&8 != 0 {
		top["database"] = map[string]any{"engine": "postgres", "host": dbValue}
	} else {
		top["database"] = map[string]any{"engine": "sqlite", "path": dbValue}
	}
	data, _ := yaml.Marshal(top)
	return data
}

// harmless is the same host configuration with every value a site can
// set replaced by a plain word: the directives the templates themselves
// write.
func harmless(s templates.Site) templates.Site {
	s.Project, s.ID, s.URL = "ref", "ref", "ref.example.com"
	s.Base, s.Src, s.Venv = "/ref/base", "/ref/src", "/ref/venv"
	s.WebUser, s.WebGroup, s.AppUser, s.AppGroup = "refweb", "refweb", "refapp", "refapp"
	s.CertFile, s.KeyFile = "/ref/cert", "/ref/key"
	s.Socket, s.RunDir, s.Launcher = "/ref/socket", "/ref/run", "/ref/launcher"
	s.SettingsFolder, s.ClientMaxBodySize = "ref", "1m"
	s.EnvironmentFile = "/ref/environment"
	options := make([]string, len(s.UWSGIOptions))
	for i, o := range s.UWSGIOptions {
		name, _, _ := strings.Cut(o, "=")
		options[i] = strings.TrimSpace(name) + " = ref"
	}
	s.UWSGIOptions = options
	return s
}

// shape is what a server makes of a rendered file: each directive's
// place, name and number of words, and whether it expands anything.
func shape(template string, data []byte) (string, error) {
	var parse func([]byte) ([]confparse.Directive, error)
	switch template {
	case templates.NginxSite:
		parse = confparse.Nginx
	case templates.Apache2Site:
		parse = confparse.Apache
	case templates.UWSGIApp:
		parse = confparse.UWSGIIni
	case templates.GunicornSocket, templates.GunicornUnit:
		parse = confparse.SystemdUnit
	case templates.GunicornInit:
		s, err := confparse.ShellShape(data)
		return strings.Join(s, "\n"), err
	default:
		return "", fmt.Errorf("no parser for %s", template)
	}
	ds, err := parse(data)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s %d", d.Path(), len(d.Args))
		if d.Expands {
			b.WriteString(" expands")
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// checkRendering renders every host template for the site's first host
// and compares what the servers would read with the harmless rendering.
func checkRendering(t *testing.T, data []byte) {
	site, err := sites.Parse("sites/shop.yaml", data)
	if err != nil {
		return // refused at load: nothing reaches a host
	}
	env := site.Environments["production"]
	for _, init := range []string{"sysv", "systemd"} {
		d := NewDeploy(site, env, env.Hosts[0].Settings, nil, nil)
		d.facts.init = init
		ts := d.templateSite()
		for _, name := range hostTemplates(d) {
			got, err := templates.Render(name, ts)
			if err != nil {
				t.Fatalf("the site loads, but %s refuses it (site validation must refuse what a template cannot hold): %v\n%s", name, err, data)
			}
			want, err := templates.Render(name, harmless(ts))
			if err != nil {
				t.Fatal(err)
			}
			gotShape, err := shape(name, got)
			if err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, got)
			}
			wantShape, _ := shape(name, want)
			if gotShape != wantShape {
				t.Fatalf("%s: the site's values change the directives the server reads\n--- with these values\n%s\n--- the template's own\n%s\n--- rendered\n%s\n--- site\n%s", name, gotShape, wantShape, got, data)
			}
		}
	}
}

// hostTemplates are the templates provision renders for d's host.
func hostTemplates(d *Deploy) []string {
	names := []string{templates.NginxSite}
	if d.Settings.Webserver == "apache2" {
		names = []string{templates.Apache2Site}
	}
	switch {
	case d.Settings.AppServer == "uwsgi":
		return append(names, templates.UWSGIApp)
	case d.facts.init == "systemd":
		return append(names, templates.GunicornSocket, templates.GunicornUnit)
	}
	return append(names, templates.GunicornInit)
}

// fuzzSeeds are the values that once added a directive or a command.
var fuzzSeeds = []struct {
	root, source, url, db, env, user, option string
	flags                                    uint8
}{
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "hello", "", "", 0},
	{"/srv/www", "src", "shop.example.com", "db.example.com", `100% "q" $HOME \ it's`, "shop_app", "cheaper = 1", 15},
	{"/srv/www$(touch /tmp/pwn)", ".", "shop.example.com", "db.sqlite3", "x", "", "", 2},
	{"/srv/www;\n    location /x/ { alias /etc/; }\n    location /y {", ".", "shop.example.com", "db.sqlite3", "x", "", "", 4},
	{"/srv/www\n    Alias /etc/ /etc/\n", ".", "shop.example.com", "db.sqlite3", "x", "", "", 5},
	{"/srv/www", ".", "shop.example.com", "db.example.com\nexec-as-root = touch /tmp/pwn", "x", "", "", 8},
	{"/srv/www\nExecStartPre=/bin/touch /tmp/pwn", ".", "shop.example.com", "db.sqlite3", "x", "", "", 2},
	{"/srv/a&b|c", ".", "shop.example.com", "db.sqlite3", "x", "", "", 0},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "$(HOME) @(exec://id) %n %(chdir)", "", "", 0},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "a\\\nb", "", "", 2},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "%(chdir) %n %%(chdir) %%%", "", "", 0},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "%(chdir) %n %%(chdir)", "", "", 2},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "x", "", "cheaper = 1\nexec-as-root = id", 0},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "x", "shop; id", "", 2},
	{"/srv/www", "src}", "shop.example.com\nserver_name evil", "db.sqlite3", "x", "", "", 4},
	{"/srv/www", ".", "shop.example.com", "db.sqlite3", "`id` $(id) ${X} %h", "", "", 2},
}

// FuzzSiteRender loads sites with generated values; whatever loads must
// render, and every rendered file must have exactly the directives (and,
// for the init script, the shell structure) of the template itself: a
// value can never add, split or expand one. The seeds run with go test.
func FuzzSiteRender(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.root, s.source, s.url, s.db, s.env, s.user, s.option, s.flags)
	}
	f.Fuzz(func(t *testing.T, root, source, url, db, env, user, option string, flags uint8) {
		checkRendering(t, fuzzSite(root, source, url, db, env, user, option, flags))
	})
}

// TestRenderedInitScriptParsesWithSh checks the seeds' init scripts with
// the shell itself, the one check the fuzz target leaves to a parser.
func TestRenderedInitScriptParsesWithSh(t *testing.T) {
	dir := t.TempDir()
	for i, s := range fuzzSeeds {
		site, err := sites.Parse("sites/shop.yaml", fuzzSite(s.root, s.source, s.url, s.db, s.env, s.user, s.option, s.flags|2))
		if err != nil {
			continue
		}
		env := site.Environments["production"]
		d := NewDeploy(site, env, env.Hosts[0].Settings, nil, nil)
		script, err := templates.Render(templates.GunicornInit, d.templateSite())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("init-%d", i))
		os.WriteFile(p, script, 0o755)
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("seed %d: sh -n: %v\n%s", i, err, out)
		}
	}
}

// FuzzBalancerRender loads a site with an lb host in front of a web
// host whose address, port, name and body size are generated; whatever
// loads must render a balancer with exactly the directives of the
// template with plain values. The seeds run with go test.
func FuzzBalancerRender(f *testing.F) {
	f.Add("10.0.0.11", 80, "shop.example.com", "30m", false)
	f.Add("[2001:db8::11]", 8080, "shop.example.com", "1g", true)
	f.Add("web1.internal;\n    server 203.0.113.5", 80, "shop.example.com", "30m", false)
	f.Add("10.0.0.11", 80, "shop.example.com;\n    location / { return 200; }", "30m; allow all", true)
	f.Add("web1 backup", 80, "shop.example.com", "30m", false)
	f.Fuzz(func(t *testing.T, address string, port int, url, size string, down bool) {
		top := map[string]any{
			"project": "shop", "url": url, "root": "/srv/www", "source": map[string]any{"path": "src"},
			"django":   map[string]any{"source_folder": ".", "settings_folder": "shop", "settings_module": "shop.settings"},
			"database": map[string]any{"engine": "postgres"},
			"web":      map[string]any{"http_port": port, "client_max_body_size": size},
			"environments": map[string]any{"production": map[string]any{"hosts": []any{
				map[string]any{"address": "deploy@10.0.0.5", "roles": []any{"lb"}},
				map[string]any{"address": address, "roles": []any{"web"}},
			}}},
		}
		data, _ := yaml.Marshal(top)
		site, err := sites.Parse("sites/shop.yaml", data)
		if err != nil {
			return // refused at load: nothing reaches a host
		}
		env := site.Environments["production"]
		d := NewDeploy(site, env, env.Hosts[0].Settings, nil, nil)
		b := d.balancer(map[string]bool{env.Hosts[1].String(): down})
		got, err := templates.Render(templates.BalancerSite, b)
		if err != nil {
			t.Fatalf("the site loads, but the balancer refuses it (site validation must refuse what the template cannot hold): %v\n%s", err, data)
		}
		b.Project, b.ID, b.URL, b.ClientMaxBodySize = "ref", "ref", "ref.example.com", "1m"
		for i := range b.Servers {
			b.Servers[i].Host, b.Servers[i].Port = "10.9.9.9", 80
		}
		want, _ := templates.Render(templates.BalancerSite, b)
		gotShape, err := confparse.Nginx(got)
		if err != nil {
			t.Fatalf("the balancer does not parse: %v\n%s", err, got)
		}
		wantShape, _ := confparse.Nginx(want)
		if a, b := directives(gotShape), directives(wantShape); a != b {
			t.Fatalf("the site's values change the balancer's directives\n--- with these values\n%s\n--- the template's own\n%s\n--- rendered\n%s", a, b, got)
		}
	})
}

// directives is each directive's place, name and number of words.
func directives(ds []confparse.Directive) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s %d %v\n", d.Path(), len(d.Args), d.Expands)
	}
	return b.String()
}
