package targets

import (
	"context"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/templates"
)

// Provision prepares and configures every host of the environment.
func Provision(ctx context.Context, site *sites.Site, env string, opts Options) error {
	_, err := onHosts(ctx, site, env, opts, hostRun{action: actionProvision, work: func(ctx context.Context, d *Deploy) ([]StepResult, error) {
		return RunSteps(ctx, d, d.mode.provision())
	}})
	return err
}

// ProvisionSteps prepares a host and configures the web and application
// servers: what the prepare-host role and the configuration half of the
// deployment role did, validated and idempotent. This is process mode's
// list; container mode has its own (container.go).
// Each host gets what its roles need (roles.go): a worker host no web
// or application server, the db host PostgreSQL opened to the others, an
// lb host its load balancer.
func ProvisionSteps() []Step { return processProvision() }

func processProvision() []Step {
	return provisionList(nil, []Step{
		forRoles(launchersStep{}, sites.RoleWeb, sites.RoleWorker),
		forRoles(appServerStep{}, sites.RoleWeb),
		forRoles(processesStep{}, sites.RoleWorker),
	})
}

// provisionList is the provision list of a mode: what every mode does,
// with the mode's own steps for the host (after its packages) and for
// the application (after its secret file).
func provisionList(host, app []Step) []Step {
	web, apps := sites.RoleWeb, []string{sites.RoleWeb, sites.RoleWorker}
	steps := []Step{factsStep{}, claimStep{}, packagesStep{}}
	steps = append(steps, host...)
	steps = append(steps,
		forRoles(appUserStep{}, apps...),
		databaseStep{},
		dbServerStep{},
		foldersStep{},
		lockStep{},
		forRoles(tlsStep{}, web),
		forRoles(secretFileStep{}, apps...),
	)
	steps = append(steps, app...)
	return append(steps, forRoles(webServerStep{}, web), balancerStep{}, forRoles(servicesStep{}, apps...))
}

// factsStep finds the init system and whether a release is live.
type factsStep struct{}

func (factsStep) Name() string { return "facts" }

func (factsStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	out, err := d.probe(ctx, shScript("facts", d.Paths.Current, d.Paths.AppSocket))
	if err != nil {
		return false, err
	}
	facts := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			facts[k] = v
		}
	}
	d.facts.init = facts["init"]
	if facts["live"] == "yes" && facts["current"] != "" {
		d.facts.live = path.Base(facts["current"])
	}
	d.slots.serving = d.app().slotOf(facts["socket"])
	return false, nil
}

// packagesStep installs the Debian packages the site needs.
type packagesStep struct{}

func (packagesStep) Name() string { return "packages" }

// packages lists what the site needs on a host: djship's own packages
// and the site's packages: list.
func (d *Deploy) packages() []string {
	pkgs := d.ownPackages()
	if d.runsSite() {
		pkgs = append(pkgs, d.Settings.Packages...)
	}
	sort.Strings(pkgs)
	return pkgs
}

// ownPackages are the packages djship's steps use on a host, as the
// mode lists them. They are installed without what Debian recommends.
func (d *Deploy) ownPackages() []string { return d.mode.packages(d) }

// processPackages are the packages process mode's steps use on a host:
// the web and application servers, the database's tools and the few
// programs the scripts call.
func (d *Deploy) processPackages() []string {
	s := d.Settings
	var pkgs []string
	if d.runsSite() {
		pkgs = append(pkgs, "python3-venv", "acl", "unzip", "openssl", "curl")
		if s.Database.Engine == "postgres" {
			pkgs = append(pkgs, "postgresql-client", "python3-psycopg2")
		} else {
			pkgs = append(pkgs, "sqlite3")
		}
	}
	if d.serves() {
		pkgs = append(pkgs, s.Webserver)
		if s.AppServer == "uwsgi" {
			// ss (iproute2) tells when an instance has no request left.
			pkgs = append(pkgs, "uwsgi", "uwsgi-plugin-python3", "iproute2")
		} else {
			pkgs = append(pkgs, "gunicorn")
		}
	}
	if d.localDatabase() {
		pkgs = append(pkgs, "postgresql", "postgresql-client")
	}
	if d.hasRole(sites.RoleLB) {
		// pgrep (procps) tells when nginx's old workers are done.
		pkgs = append(pkgs, "nginx", "procps")
	}
	sort.Strings(pkgs)
	return slices.Compact(pkgs)
}

// The site's packages are installed with what Debian recommends for
// them: Debian's Django recommends libjs-jquery, whose files the admin's
// static files link to, and a host where Django came without it fails
// collectstatic under a manifest storage (and serves the admin without
// jQuery under the default one). A site package already installed
// without its recommendations gets them too.
func (packagesStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	own, site := d.ownPackages(), d.Settings.Packages
	installed, recommends, err := d.installedPackages(ctx, append(append([]string{}, own...), site...))
	if err != nil {
		return false, err
	}
	var wanted [][]string
	var asked []string
	for _, p := range site {
		if installed[p] {
			for _, choices := range recommends[p] {
				wanted = append(wanted, choices)
				asked = append(asked, choices...)
			}
		}
	}
	var extra []string
	if len(wanted) > 0 {
		have, _, err := d.installedPackages(ctx, asked)
		if err != nil {
			return false, err
		}
		extra = unmet(wanted, have)
	}
	plain, withRecommends := notIn(own, installed), notIn(site, installed)
	if len(plain) == 0 && len(withRecommends) == 0 && len(extra) == 0 {
		return false, nil
	}
	changed := false
	for _, g := range []struct {
		mode, why string
		pkgs      []string
		optional  bool
	}{
		{"no-recommends", "", plain, false},
		{"recommends", " (with what Debian recommends for them)", withRecommends, false},
		// A recommendation may name a package this host's lists lack, or
		// a virtual one with several providers: it is not worth failing
		// the run for, but it is said.
		{"no-recommends", " (recommended by the site's packages, installed without them)", extra, true},
	} {
		if len(g.pkgs) == 0 {
			continue
		}
		what := strings.Join(g.pkgs, " ") + g.why
		if d.Check {
			d.plan("install packages: %s", what)
			changed = true
			continue
		}
		d.note("installing %s", what)
		cmd := d.withProxy(remote.Command{Script: shScript("install-packages", append([]string{g.mode}, g.pkgs...)...), Become: true})
		if _, err := d.Host.Run(ctx, cmd); err != nil {
			if g.optional {
				d.note("warning: could not install %s, which the site's packages recommend (the run goes on without them): %v", strings.Join(g.pkgs, " "), err)
				continue
			}
			return false, fmt.Errorf("install %s: %w", strings.Join(g.pkgs, " "), err)
		}
		changed = true
	}
	return changed, nil
}

// installedPackages asks dpkg which of the packages are installed, and
// what each installed one recommends.
func (d *Deploy) installedPackages(ctx context.Context, pkgs []string) (map[string]bool, map[string][][]string, error) {
	out, err := d.probe(ctx, shScript("installed-packages", pkgs...))
	if err != nil {
		return nil, nil, err
	}
	installed, recommends := parseInstalled(out)
	return installed, recommends, nil
}

// debianPackage is the grammar of a Debian package name (Debian Policy
// 5.6.1), which is all that is taken from dpkg's Recommends field.
var debianPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// parseInstalled reads installed-packages.sh's lines ("name status
// recommends"): the installed packages, and for each its
// recommendations, each a list of choices (a | b), versions and
// architectures left out.
func parseInstalled(out string) (map[string]bool, map[string][][]string) {
	installed, recommends := map[string]bool{}, map[string][][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) < 2 || f[1] != "installed" {
			continue
		}
		name := strings.SplitN(f[0], ":", 2)[0]
		installed[name] = true
		if len(f) < 3 {
			continue
		}
		for _, item := range strings.Split(f[2], ",") {
			var choices []string
			for _, alt := range strings.Split(item, "|") {
				words := strings.Fields(alt)
				if len(words) == 0 {
					continue
				}
				if c := strings.SplitN(words[0], ":", 2)[0]; debianPackage.MatchString(c) {
					choices = append(choices, c)
				}
			}
			if len(choices) > 0 {
				recommends[name] = append(recommends[name], choices)
			}
		}
	}
	return installed, recommends
}

// unmet lists the first choice of each recommendation none of whose
// choices is installed, once each.
func unmet(wanted [][]string, installed map[string]bool) []string {
	var firsts []string
next:
	for _, choices := range wanted {
		for _, c := range choices {
			if installed[c] {
				continue next
			}
		}
		firsts = append(firsts, choices[0])
	}
	return notIn(firsts, nil)
}

// notIn lists the packages not in the set, once each.
func notIn(pkgs []string, set map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if !set[p] && !seen[p] {
			out = append(out, p)
			seen[p] = true
		}
	}
	return out
}

// withProxy makes a command use the site's proxy. The URL travels on
// standard input, not in argv: it may hold a password.
func (d *Deploy) withProxy(c remote.Command) remote.Command {
	if d.Settings.Proxy == "" {
		return c
	}
	c.Script = `IFS= read -r http_proxy || true; https_proxy=$http_proxy; export http_proxy https_proxy; ` + c.Script
	c.Stdin = strings.NewReader(d.Settings.Proxy + "\n")
	return c
}

// appUserStep creates the application's system user and group, and the
// system user that builds releases.
type appUserStep struct{}

func (appUserStep) Name() string { return "app user" }

func (appUserStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	u, g := d.Settings.App.User, d.Settings.App.Group
	out, err := d.probe(ctx, shScript("users", u, g, buildUser))
	if err != nil {
		return false, err
	}
	changed := false
	if !strings.Contains(out, "group") {
		changed = true
		if err := d.do(ctx, "create group "+g, remote.Sh("groupadd", "--system", "--", g)); err != nil {
			return false, err
		}
	}
	if !strings.Contains(out, "user") {
		changed = true
		if err := d.do(ctx, "create system user "+u, remote.Sh("useradd", "--system", "--gid", g, "--no-create-home", "--home-dir", d.Paths.Base, "--shell", "/usr/sbin/nologin", "--", u)); err != nil {
			return false, err
		}
	}
	if !strings.Contains(out, "unpacker") {
		// The user that builds releases: it owns nothing but the empty
		// folders it unpacks into.
		changed = true
		if err := d.do(ctx, "create system user "+buildUser+" (builds releases)", shScript("add-unpack-user", buildUser)); err != nil {
			return false, err
		}
	}
	return changed, nil
}

// foldersStep lays out the site's folders with their owners, modes and
// ACLs. The web server's group may pass through to the static files and
// read the uploads; only the application writes media, logs and the
// database; code is the application's to read, nobody else's.
type foldersStep struct{}

func (foldersStep) Name() string { return "folders" }

// folders is the host layout with its permissions.
func (d *Deploy) folders() []dir {
	p, app, appGroup, web := d.Paths, d.Settings.App.User, d.Settings.App.Group, d.Settings.Web.Group
	if !d.runsSite() {
		// A db or lb host keeps the lock and the deploy log; the db host
		// the snapshots too.
		dirs := []dir{
			{Path: d.Settings.Root, Owner: "root", Group: "root", Mode: 0o755, KeepExisting: true},
			{Path: p.Base, Owner: "root", Group: "root", Mode: 0o750},
		}
		if d.hasRole(sites.RoleDB) {
			dirs = append(dirs, dir{Path: p.Snapshots, Owner: "root", Group: "root", Mode: 0o700})
		}
		return dirs
	}
	// The web server passes through to the static files and the uploads,
	// the unpacking user to the release it unpacks.
	traverse := []string{"group:" + web + ":--x"}
	unpacking := []string{"group:" + web + ":--x", "user:" + buildUser + ":--x"}
	return []dir{
		{Path: d.Settings.Root, Owner: "root", Group: "root", Mode: 0o755, KeepExisting: true},
		{Path: p.Base, Owner: "root", Group: appGroup, Mode: 0o750, Named: unpacking},
		{Path: p.Releases, Owner: "root", Group: appGroup, Mode: 0o750, Named: unpacking,
			Default: []string{"user::rwx", "group::r-x", "group:" + appGroup + ":r-x", "group:" + web + ":--x", "mask::r-x", "other::---"}},
		{Path: p.Shared, Owner: "root", Group: appGroup, Mode: 0o750, Named: traverse},
		{Path: p.Media, Owner: app, Group: appGroup, Mode: fs.ModeSetgid | 0o770, Named: []string{"group:" + web + ":r-x"},
			Default: []string{"user::rwx", "group::rwx", "group:" + web + ":r-x", "mask::rwx", "other::---"}},
		{Path: p.Logs, Owner: app, Group: appGroup, Mode: 0o750},
		{Path: p.DB, Owner: app, Group: appGroup, Mode: 0o750},
		{Path: p.Snapshots, Owner: "root", Group: "root", Mode: 0o700},
		{Path: p.Versions, Owner: "root", Group: "root", Mode: 0o750},
	}
}

func (foldersStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return d.ensureDirs(ctx, d.folders())
}

// webServer knows where a web server keeps its site files.
type webServer struct {
	name, confDir, service string
}

func (d *Deploy) web() webServer {
	if d.Settings.Webserver == "apache2" {
		return webServer{name: "apache2", confDir: "/etc/apache2", service: "apache2"}
	}
	return webServer{name: "nginx", confDir: "/etc/nginx", service: "nginx"}
}

// logDir is the folder of the web server's logs (the site's own are
// <project>.error.log and <project>.access.log there).
func (w webServer) logDir() string { return "/var/log/" + w.name }

func (w webServer) certFile(project string) string {
	return path.Join(w.confDir, "ssl", project+".crt")
}
func (w webServer) keyFile(project string) string { return path.Join(w.confDir, "ssl", project+".key") }
func (w webServer) siteFile(project string) string {
	return path.Join(w.confDir, "sites-available", project+".conf")
}
func (w webServer) enabledFile(project string) string {
	return path.Join(w.confDir, "sites-enabled", project+".conf")
}

// tlsStep installs the certificate and key: a generated self-signed pair
// (kept across runs), or the site's certificate with its key from the
// secrets. The key is root's, readable by the web server's group alone.
type tlsStep struct{}

func (tlsStep) Name() string { return "tls" }

func (tlsStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s, w := d.Settings, d.web()
	cert, key := w.certFile(s.Instance), w.keyFile(s.Instance)
	switch s.TLS.Certificate {
	case "":
		d.note("no tls.certificate: the site is served over plain HTTP on port %d", s.Web.HTTPPort)
		return false, nil
	case "self-signed":
		changed, err := d.ensureDir(ctx, dir{Path: path.Dir(cert), Owner: "root", Group: "root", Mode: 0o755})
		if err != nil {
			return false, err
		}
		subject, err := d.probe(ctx, shScript("certificate-subject", cert, key))
		if err != nil {
			return false, err
		}
		if subject != "subject=CN="+s.URL {
			if err := d.do(ctx, "generate a self-signed certificate for "+s.URL, shScript("self-signed", cert, key, s.URL, s.Web.Group)); err != nil {
				return false, err
			}
			d.reload["web"] = true
			return true, nil
		}
		// The pair exists: keep it, and its permissions right.
		c, err := d.ensureMode(ctx, key, "640 root "+s.Web.Group, "root:"+s.Web.Group, "0640")
		return changed || c, err
	}
	keyPEM, ok := d.Secrets[s.TLS.KeySecret]
	if !ok {
		return false, fmt.Errorf("tls.certificate is %s, but the secrets of %s have no %s holding its private key", s.TLS.Certificate, d.Env.Name, s.TLS.KeySecret)
	}
	certPEM, err := os.ReadFile(d.Site.Path(s.TLS.Certificate))
	if err != nil {
		return false, fmt.Errorf("tls.certificate: %w", err)
	}
	if err := checkCertificate(s.TLS.Certificate, certPEM); err != nil {
		return false, err
	}
	changed, err := d.ensureDir(ctx, dir{Path: path.Dir(cert), Owner: "root", Group: "root", Mode: 0o755})
	if err != nil {
		return false, err
	}
	pair, err := d.ensureFiles(ctx,
		file{Path: cert, Data: certPEM, Mode: 0o644, Owner: "root", Group: "root"},
		file{Path: key, Data: []byte(keyPEM), Mode: 0o640, Owner: "root", Group: s.Web.Group, Secret: true})
	if pair {
		d.reload["web"] = true
	}
	return changed || pair, err
}

// ensureMode corrects a file's owner and mode when they differ from want
// ("640 root www-data").
func (d *Deploy) ensureMode(ctx context.Context, p, want, owner, mode string) (bool, error) {
	got, err := d.probe(ctx, remote.Sh("stat", "-c", "%a %U %G", "--", p))
	if err != nil || got == want {
		return false, err
	}
	return true, d.do(ctx, fmt.Sprintf("set %s to %s (now %s)", p, want, got), remote.Sh("chown", "--", owner, p)+" && "+remote.Sh("chmod", "--", mode, p))
}

// templateSite is what the configuration templates need for this host.
func (d *Deploy) templateSite() templates.Site {
	s, p, w := d.Settings, d.Paths, d.web()
	t := templates.Site{
		Project: s.Instance, ID: strings.ReplaceAll(s.Instance, "-", "_"), URL: s.URL, Base: p.Base,
		Src:     path.Join(p.Current, "src", path.Clean(s.Django.SourceFolder)),
		Venv:    path.Join(p.Current, "venv"),
		WebUser: s.Web.User, WebGroup: s.Web.Group, AppUser: s.App.User, AppGroup: s.App.Group,
		HTTPPort: s.Web.HTTPPort, HTTPSPort: s.Web.HTTPSPort,
		TLS: s.TLS.Certificate != "", CertFile: w.certFile(s.Instance), KeyFile: w.keyFile(s.Instance),
		ClientMaxBodySize: s.Web.ClientMaxBodySize, AppServer: s.AppServer,
		SettingsFolder: s.Django.SettingsFolder, Workers: s.App.Workers, Timeout: s.App.Timeout,
		UWSGIOptions:    s.App.UWSGIOptions,
		RunDir:          d.app().runDir(),
		Launcher:        templates.GunicornLauncherPath,
		EnvironmentFile: p.Environment,
	}
	t.Socket = d.mode.socket(d)
	if s.AppServer == "uwsgi" {
		t.Launcher = templates.WSGILauncherPath
	}
	return t
}

// checkCertificate refuses a tls.certificate file that holds no
// certificate, or that holds a private key: the certificate is installed
// readable by everyone, the key belongs in the secrets.
func checkCertificate(name string, data []byte) error {
	certs := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return fmt.Errorf("tls.certificate %s holds a private key (%s), which would be installed readable by everyone: keep only the certificate chain in the file and store the key with mage secrets:set <env> TLS_KEY < key.pem", name, block.Type)
		case block.Type == "CERTIFICATE":
			certs++
		}
	}
	if certs == 0 {
		return fmt.Errorf("tls.certificate %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", name)
	}
	return nil
}
