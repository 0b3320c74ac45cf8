package templates

import (
	"encoding/json"
	"path/filepath"
	"testing"

	goldenfile "github.com/djship/djship/internal/golden"
)

func TestManifest(t *testing.T) {
	m := Manifest{
		Project:     "example",
		Revision:    "1a2b3c4",
		Source:      `path:example@1a2b3c4d5e6f "quoted"`,
		Files:       12,
		FilesSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Created:     "2026-11-23T12:00:00Z",
	}
	got, err := RenderManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest.json", got)
	var back Manifest
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if back != m {
		t.Errorf("round trip: got %+v, want %+v", back, m)
	}
}

// sample is a site with values that exercise escaping.
func sample(appServer string, tls bool) Site {
	launcher := GunicornLauncherPath
	if appServer == "uwsgi" {
		launcher = WSGILauncherPath
	}
	return Site{
		Project: "shop", ID: "shop", URL: "shop.example.com", Base: "/srv/www/shop",
		Src: "/srv/www/shop/current/src", Venv: "/srv/www/shop/current/venv",
		WebUser: "www-data", WebGroup: "www-data", AppUser: "shop", AppGroup: "shop",
		HTTPPort: 80, HTTPSPort: 443, TLS: tls,
		CertFile: "/etc/nginx/ssl/shop.crt", KeyFile: "/etc/nginx/ssl/shop.key",
		ClientMaxBodySize: "30m", AppServer: appServer,
		Socket: "/run/uwsgi/app/shop/socket", RunDir: "/run/gunicorn-shop",
		SettingsFolder:  "shop",
		EnvironmentFile: "/srv/www/shop/environment.json",
		Workers:         3, Timeout: 60,
		UWSGIOptions: []string{"smart-attach-daemon2 = /run/shop-celery.pid /srv/www/shop/current/venv/bin/celery -A shop worker --pidfile=/run/shop-celery.pid"},
		Launcher:     launcher,
	}
}

func TestHostTemplates(t *testing.T) {
	tests := []struct {
		golden, template string
		site             Site
	}{
		{"nginx-uwsgi-tls.conf", NginxSite, sample("uwsgi", true)},
		{"nginx-gunicorn-plain.conf", NginxSite, func() Site {
			s := sample("gunicorn", false)
			s.HTTPPort = 8080
			s.Socket = "/run/gunicorn-shop/socket"
			return s
		}()},
		{"apache2-uwsgi-tls.conf", Apache2Site, func() Site { s := sample("uwsgi", true); s.HTTPSPort = 8443; return s }()},
		{"apache2-gunicorn-plain.conf", Apache2Site, sample("gunicorn", false)},
		{"uwsgi.ini", UWSGIApp, sample("uwsgi", true)},
		{"gunicorn.socket", GunicornSocket, sample("gunicorn", true)},
		{"gunicorn.service", GunicornUnit, sample("gunicorn", true)},
		{"gunicorn.init", GunicornInit, sample("gunicorn", true)},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := Render(tt.template, tt.site)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, got)
			again, _ := Render(tt.template, tt.site)
			if string(again) != string(got) {
				t.Error("rendering is not deterministic")
			}
		})
	}
}

func TestEscapes(t *testing.T) {
	if got, err := uwsgiValue("100% %n"); err != nil || got != "100%% %%n" {
		t.Errorf("uwsgiValue = %q, %v", got, err)
	}
	if got, err := systemdValue(`a "b" \ 50% $X`); err != nil || got != `"a \"b\" \\ 50%% $X"` {
		t.Errorf("systemdValue = %q, %v", got, err)
	}
	for in, want := range map[string]int64{"30m": 30 << 20, "512k": 512 << 10, "1g": 1 << 30, "100": 100} {
		if got, err := sizeInBytes(in); err != nil || got != want {
			t.Errorf("sizeInBytes(%q) = %d, %v", in, got, err)
		}
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got)
}

// sampleProcess is a process of the sample site, with arguments that
// need quoting in every syntax.
func sampleProcess() Process {
	s := sample("gunicorn", true)
	s.Launcher = ProcessLauncherPath
	return Process{Site: s, Name: "worker", Unit: "djship-shop-worker",
		Command: []string{"celery", "-A", "shop", "worker", "--loglevel", "info", "--hostname", "worker@%h", "--pool=$prefork", `it's "quoted"`}}
}

func TestProcessTemplates(t *testing.T) {
	for file, name := range map[string]string{"process.service": ProcessUnit, "process.init": ProcessInit} {
		got, err := Render(name, sampleProcess())
		if err != nil {
			t.Fatal(err)
		}
		golden(t, file, got)
	}
}

func TestProcessTemplatesRefuseInjection(t *testing.T) {
	for _, c := range []struct {
		name      string
		set       func(*Process)
		refusedBy []string
	}{
		{"systemd directive through an argument", func(p *Process) { p.Command = append(p.Command, "x\nExecStartPre=/bin/touch /tmp/pwn") }, []string{ProcessUnit}},
		{"systemd directive through the name", func(p *Process) { p.Name = "w\nUser=root" }, []string{ProcessUnit}},
		{"newline through the name in the init script's header", func(p *Process) { p.Unit = "w\ntouch /tmp/pwn" }, []string{ProcessInit}},
	} {
		for _, name := range c.refusedBy {
			p := sampleProcess()
			c.set(&p)
			if got, err := Render(name, p); err == nil {
				t.Errorf("%s: %s rendered:\n%s", c.name, name, got)
			}
		}
	}
}

// sampleBalancer is the lb site of three web hosts, one of them down.
func sampleBalancer() Balancer {
	return Balancer{Project: "shop", ID: "shop_lb", URL: "shop.example.com", HTTPPort: 80, ClientMaxBodySize: "30m",
		Servers: []Upstream{{Host: "10.0.0.11", Port: 80}, {Host: "web2.internal", Port: 8080, Down: true}, {Host: "2001:db8::12", Port: 80}}}
}

func TestBalancerTemplate(t *testing.T) {
	got, err := Render(BalancerSite, sampleBalancer())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "balancer.conf", got)
}

func TestBalancerRefusesInjection(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Balancer)
	}{
		{"a directive through a host", func(b *Balancer) { b.Servers[0].Host = "10.0.0.11:80;\n    server 203.0.113.5" }},
		{"a second word in a host", func(b *Balancer) { b.Servers[0].Host = "10.0.0.11 backup" }},
		{"brackets around a name", func(b *Balancer) { b.Servers[0].Host = "[web1]" }},
		{"a port out of range", func(b *Balancer) { b.Servers[0].Port = 70000 }},
		{"a location through the site's name", func(b *Balancer) { b.URL = "shop.example.com;\n    location / { return 200; }" }},
		{"a size with a directive", func(b *Balancer) { b.ClientMaxBodySize = "30m; allow all" }},
	} {
		b := sampleBalancer()
		c.set(&b)
		if out, err := Render(BalancerSite, b); err == nil {
			t.Errorf("%s: rendered\n%s", c.name, out)
		}
	}
}
