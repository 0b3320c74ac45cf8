package targets

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/templates"
)

// validate runs scripts/<name>.sh, a validator, with the new configuration on its
// standard input; a failure carries the validator's own message.
func (d *Deploy) validate(ctx context.Context, what string, data []byte, name string, args ...string) error {
	_, err := d.Host.Run(ctx, remote.Command{
		Script: shScript(name, args...),
		Stdin:  bytes.NewReader(data),
		Become: true,
		Quiet:  true,
	})
	if err != nil {
		return fmt.Errorf("the new %s does not validate, the old one stays active: %w", what, err)
	}
	return nil
}

// appServerStep writes the application server's configuration after
// validating it: a uWSGI app in apps-available/apps-enabled, or gunicorn
// as systemd socket and service units or, without systemd, an init script.
type appServerStep struct{}

func (appServerStep) Name() string { return "app server config" }

func (appServerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	site := d.templateSite()
	if d.Settings.AppServer == "uwsgi" {
		return d.uwsgiConfig(ctx, site)
	}
	if d.facts.init == "systemd" {
		return d.gunicornUnits(ctx, site)
	}
	return d.gunicornInit(ctx, site)
}

// launchersStep installs the launchers every web and worker host runs
// the application, manage.py and the processes through.
type launchersStep struct{}

func (launchersStep) Name() string { return "launchers" }

func (launchersStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return d.installLaunchers(ctx)
}

// installLaunchers installs the three launchers that read the
// application's environment (see templates/launchers.go).
func (d *Deploy) installLaunchers(ctx context.Context) (bool, error) {
	changed, err := d.ensureDir(ctx, dir{Path: templates.LauncherDir, Owner: "root", Group: "root", Mode: 0o755})
	if err != nil {
		return false, err
	}
	var files []file
	for _, p := range slices.Sorted(maps.Keys(templates.Launchers)) {
		files = append(files, file{Path: p, Data: []byte(templates.Launchers[p]), Mode: 0o644, Owner: "root", Group: "root"})
	}
	c, err := d.ensureFiles(ctx, files...)
	if c {
		d.reload["app"] = true
	}
	return changed || c, err
}

// uwsgiConfig writes the ini file of each slot (see slots.go) once both
// validate; which one runs is the upgrade's business.
func (d *Deploy) uwsgiConfig(ctx context.Context, site templates.Site) (bool, error) {
	var files []file
	for _, slot := range uwsgiSlots {
		site.Src = path.Join(d.Paths.slot(slot), "src", path.Clean(d.Settings.Django.SourceFolder))
		site.Venv = path.Join(d.Paths.slot(slot), "venv")
		ini, err := templates.Render(templates.UWSGIApp, site)
		if err != nil {
			return false, err
		}
		available, _ := d.app().ini(slot)
		if err := d.validate(ctx, "uWSGI configuration "+available, ini, "test-uwsgi"); err != nil {
			return false, err
		}
		files = append(files, file{Path: available, Data: ini, Mode: 0o644, Owner: "root", Group: "root"})
	}
	changed, err := d.ensureFiles(ctx, files...)
	if changed {
		d.reload["app"] = true
	}
	return changed, err
}

func (d *Deploy) gunicornUnits(ctx context.Context, site templates.Site) (bool, error) {
	socket, err := templates.Render(templates.GunicornSocket, site)
	if err != nil {
		return false, err
	}
	service, err := templates.Render(templates.GunicornUnit, site)
	if err != nil {
		return false, err
	}
	a := d.app()
	both := append(append(append([]byte{}, socket...), []byte("#--djship-split--\n")...), service...)
	if err := d.validate(ctx, "gunicorn units", both, "test-gunicorn-units", a.unit()); err != nil {
		return false, err
	}
	changed, err := d.ensureFiles(ctx,
		file{Path: a.systemdUnit("socket"), Data: socket, Mode: 0o644, Owner: "root", Group: "root"},
		file{Path: a.systemdUnit("service"), Data: service, Mode: 0o644, Owner: "root", Group: "root"})
	if err != nil {
		return false, err
	}
	if changed {
		if err := d.do(ctx, "systemctl daemon-reload", "systemctl daemon-reload"); err != nil {
			return false, err
		}
		d.reload["app"] = true
	}
	return changed, nil
}

func (d *Deploy) gunicornInit(ctx context.Context, site templates.Site) (bool, error) {
	script, err := templates.Render(templates.GunicornInit, site)
	if err != nil {
		return false, err
	}
	a := d.app()
	name := a.unit()
	if err := d.validate(ctx, "init script", script, "test-init-script"); err != nil {
		return false, err
	}
	changed, err := d.ensureFile(ctx, file{Path: a.initScript(), Data: script, Mode: 0o755, Owner: "root", Group: "root"})
	if err != nil {
		return false, err
	}
	if changed {
		if err := d.do(ctx, "enable "+name+" at boot", shScript("enable-at-boot", name)); err != nil {
			return false, err
		}
		d.reload["app"] = true
	}
	return changed, nil
}

// webServerStep writes the site's nginx or Apache configuration. The new
// file is first tested in a copy of the web server's configuration
// folder; the live files change only when it passes.
type webServerStep struct{}

func (webServerStep) Name() string { return "web server config" }

// apacheModules are the modules the Apache site uses.
func (d *Deploy) apacheModules() []string {
	mods := []string{"headers", "expires", "proxy", "http2"}
	if d.Settings.TLS.Certificate != "" {
		mods = append(mods, "ssl")
	}
	if d.Settings.AppServer == "uwsgi" {
		return append(mods, "proxy_uwsgi")
	}
	return append(mods, "proxy_http")
}

func (webServerStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	site, w, s := d.templateSite(), d.web(), d.Settings
	name := templates.NginxSite
	if w.name == "apache2" {
		name = templates.Apache2Site
	}
	conf, err := templates.Render(name, site)
	if err != nil {
		return false, err
	}
	changed := false
	if w.name == "apache2" {
		c, err := d.enableApacheModules(ctx)
		if err != nil {
			return false, err
		}
		tokens, err := d.apacheServerTokens(ctx)
		if err != nil {
			return false, err
		}
		changed = c || tokens
	}
	// In check mode nothing new is tested: the certificate of a fresh host
	// does not exist yet. Provision tests before it changes anything.
	if !d.Check {
		if err := d.testWebConfig(ctx, w, s.Instance, s.Web.CheckCommand, conf); err != nil {
			return false, err
		}
	}
	c, err := d.ensureFile(ctx, file{Path: w.siteFile(s.Instance), Data: conf, Mode: 0o644, Owner: "root", Group: "root"})
	if err != nil {
		return false, err
	}
	linked, err := d.ensureLink(ctx, w.enabledFile(s.Instance), "../sites-available/"+s.Instance+".conf")
	if err != nil {
		return false, err
	}
	changed = changed || c || linked
	if changed {
		d.reload["web"] = true
	}
	return changed, nil
}

// apacheServerTokens is Apache's setting, for the whole server, that its
// Server header names no version or operating system ("Apache"). Its
// file sorts after Debian's security.conf, whose ServerTokens OS it
// overrides; every djship site on the host writes the same file.
const apacheServerTokens = "# Managed by djship: Apache's Server header names no version; changes made here are overwritten.\nServerTokens Prod\n"

// apacheServerTokens writes and enables apacheServerTokens.
func (d *Deploy) apacheServerTokens(ctx context.Context) (bool, error) {
	const name = "server-tokens-djship.conf"
	c, err := d.ensureFile(ctx, file{Path: "/etc/apache2/conf-available/" + name, Data: []byte(apacheServerTokens), Mode: 0o644, Owner: "root", Group: "root"})
	if err != nil {
		return false, err
	}
	linked, err := d.ensureLink(ctx, "/etc/apache2/conf-enabled/"+name, "../conf-available/"+name)
	return c || linked, err
}

// testWebConfig checks the new site file inside a copy of the web
// server's configuration folder, with the same validator as the live one.
func (d *Deploy) testWebConfig(ctx context.Context, w webServer, project, check string, conf []byte) error {
	if w.name == "apache2" {
		return d.validate(ctx, "Apache site", conf, "test-apache-site", append([]string{project, check}, d.apacheModules()...)...)
	}
	return d.validate(ctx, "nginx site", conf, "test-nginx-site", project, check)
}

func (d *Deploy) enableApacheModules(ctx context.Context) (bool, error) {
	mods := d.apacheModules()
	out, err := d.probe(ctx, shScript("missing-apache-modules", mods...))
	if err != nil || out == "" {
		return false, err
	}
	missing := strings.Fields(out)
	return true, d.do(ctx, "enable Apache modules "+strings.Join(missing, " "), remote.Sh(append([]string{"a2enmod", "-q"}, missing...)...))
}

// servicesStep starts or gracefully reloads what changed: the web server,
// and the application server once a release is live. Nothing is
// restarted, and nothing unchanged is touched.
type servicesStep struct{}

func (servicesStep) Name() string { return "services" }

func (servicesStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if !d.serves() {
		// A worker host runs the site's processes only.
		if d.facts.live == "" {
			return false, nil
		}
		return d.startProcesses(ctx, false)
	}
	changed := false
	uwsgi := d.facts.live != "" && d.slotted()
	// A uWSGI instance serves the live release before the web server
	// reloads: its configuration may lead to app.sock for the first time.
	if uwsgi {
		c, err := d.activateLive(ctx, d.reload["app"])
		if err != nil {
			return false, err
		}
		changed = c
	}
	w := d.web()
	c, err := d.control(ctx, d.webService(), d.reload["web"])
	if err != nil {
		log := "/var/log/nginx/error.log"
		if w.name == "apache2" {
			log = "/var/log/apache2/error.log"
		}
		if tail, _ := d.probe(ctx, shScript("tail", log)); tail != "" {
			err = fmt.Errorf("%w\n  %s says:\n    %s", err, log, strings.ReplaceAll(tail, "\n", "\n    "))
		}
		return false, err
	}
	changed = changed || c
	switch {
	case d.facts.live == "":
		d.note("no release is live yet: %s starts with the first one", d.Settings.AppServer)
		return changed, nil
	}
	c, err = d.mode.afterWebReload(ctx, d)
	return changed || c, err
}

// webService controls nginx or Apache: through systemctl on a systemd
// host (enabled at boot when started), through service(8) elsewhere;
// a reload is graceful on both.
func (d *Deploy) webService() service { return d.serviceOf(d.web()) }

// serviceOf controls web server w on this host.
func (d *Deploy) serviceOf(w webServer) service {
	if d.facts.init == "systemd" {
		return systemdService(w.service, w.service+".service", "reload")
	}
	sh := func(action string) string { return remote.Sh("service", w.service, action) }
	return service{name: w.service, status: sh("status"), start: sh("start"), reload: sh("reload"), restart: sh("restart"), stop: sh("stop")}
}

// service is how to ask about, start, reload and stop one service.
type service struct {
	name, status, start, reload, restart, stop string
}

// systemdService controls the systemd service unit: running when
// activate is (the service itself, or the socket in front of it), both
// enabled at boot and started together (so a host that restarts has
// warm workers before the first request), reloaded with the systemctl
// verb reload.
func systemdService(unit, activate, reload string) service {
	units := []string{activate}
	if activate != unit+".service" {
		units = append(units, unit+".service")
	}
	return service{name: unit,
		status:  remote.Sh("systemctl", "is-active", "--quiet", activate),
		start:   remote.Sh(append([]string{"systemctl", "enable", "--now"}, units...)...),
		reload:  remote.Sh("systemctl", reload, unit+".service"),
		restart: remote.Sh("systemctl", "restart", unit+".service"),
		stop:    remote.Sh("systemctl", "stop", unit+".service")}
}

// initService controls an init script; reload and restart are the
// actions of the script that do those.
func initService(name, script, reload, restart string) service {
	return service{name: name, status: remote.Sh(script, "status"), start: remote.Sh(script, "start"),
		reload: remote.Sh(script, reload), restart: remote.Sh(script, restart), stop: remote.Sh(script, "stop")}
}

// control starts a stopped service, or reloads a running one whose
// configuration changed.
func (d *Deploy) control(ctx context.Context, s service, changed bool) (bool, error) {
	_, err := d.run(ctx, s.status)
	running := err == nil
	switch {
	case !running:
		return true, d.do(ctx, "start "+s.name, s.start)
	case changed:
		return true, d.do(ctx, "reload "+s.name, s.reload)
	}
	return false, nil
}
