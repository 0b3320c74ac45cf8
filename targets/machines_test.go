package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/shquote"
	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// TestFreshSystemdHosts ships the example project to fresh Debian
// machines booted with systemd as PID 1, which have nothing but Debian's
// minbase with sshd, sudo and Python: djship installs everything else
// (from the site's packages: line and its own list), writes gunicorn's
// socket and service units or uWSGI's instances, and reloads nginx or
// Apache through systemd. On each stack: the first ship, the admin's
// static files (which need what Debian recommends for Django), a
// code-only ship under load, a web server configuration reloaded by
// systemctl, a release that cannot start, and a rollback, with no
// request failing; then the host reboots and serves the live release.
func TestFreshSystemdHosts(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	needMachineExample(t)
	cases := []shipCase{
		{web: "nginx", app: "gunicorn", db: "sqlite"},
		{web: "apache2", app: "gunicorn", db: "postgres"},
		{web: "nginx", app: "uwsgi", db: "postgres"},
		{web: "apache2", app: "uwsgi", db: "sqlite"},
	}
	bridge := testenv.NewBridge(t)
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s+%s+%s", c.web, c.app, c.db), func(t *testing.T) {
			// Each machine is a host of its own: two ship at once.
			t.Parallel()
			m := bridge.Boot(t)
			t.Logf("%s booted in %s", m.Name, m.BootTime.Round(time.Millisecond))
			c.machine = m
			c.extra = "packages: [python3-django]\n"
			site, src := exampleSite(t, c, 80+i, nil)

			start := time.Now()
			_, _, out, err := shipRevision(t, site, "v1")
			if err != nil {
				t.Fatalf("the first ship to a fresh host: %v\n%s", err, out)
			}
			t.Logf("the first ship (provision included) took %s", time.Since(start).Round(time.Millisecond))
			page(t, site, "v1")
			if got := m.Shell(t, "cat /proc/1/comm"); got != "systemd" {
				t.Fatalf("PID 1 on the machine is %q", got)
			}
			checkSystemdUnits(t, m, site, c, false)

			l := startLoad(site, 4)
			time.Sleep(time.Second)
			index := filepath.Join(src, "notes", "templates", "notes", "index.html")
			good := must(os.ReadFile(index))
			os.WriteFile(index, bytes.Replace(good, []byte("notes</p>"), []byte("notes (v2)</p>"), 1), 0o644)
			if _, _, out, err := shipRevision(t, site, "v2"); err != nil {
				l.finish()
				t.Fatalf("the code-only ship under load: %v\n%s", err, out)
			}
			if body := page(t, site, "v2"); !strings.Contains(body, "(v2)") {
				t.Errorf("v2 is live without its change:\n%s", body)
			}
			// A change of the web server's configuration: systemctl
			// reloads nginx or Apache gracefully.
			site.Environments["test"].Hosts[0].Settings.Web.ClientMaxBodySize = "40m"
			var pr bytes.Buffer
			if err := Provision(context.Background(), site, "test", Options{Out: &pr, Secrets: shipSecrets}); err != nil {
				l.finish()
				t.Fatalf("provision with a new web server configuration: %v\n%s", err, pr.String())
			}
			if !regexp.MustCompile(`changed +web server config[\s\S]*changed +services`).MatchString(pr.String()) {
				t.Errorf("the new configuration did not reach the web server:\n%s", pr.String())
			}
			if got := m.Shell(t, `grep -Rh "client_max_body_size\|LimitRequestBody" /etc/nginx/sites-enabled /etc/apache2/sites-enabled 2>/dev/null | head -n 1`); !strings.Contains(got, "40m") && !strings.Contains(got, "41943040") {
				t.Errorf("the web server's site has %q", got)
			}
			wsgi := filepath.Join(src, "exampleproject", "wsgi.py")
			goodWSGI := must(os.ReadFile(wsgi))
			os.WriteFile(wsgi, append([]byte("raise ImportError('this release cannot start')\n"), goodWSGI...), 0o644)
			_, _, _, errBroken := shipRevision(t, site, "broken")
			os.WriteFile(wsgi, goodWSGI, 0o644)
			if errBroken == nil || !strings.Contains(errBroken.Error(), "this release cannot start") {
				t.Errorf("the release that cannot start: %v", errBroken)
			}
			page(t, site, "v2")
			var rb bytes.Buffer
			if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &rb, Secrets: shipSecrets}}); err != nil {
				l.finish()
				t.Fatalf("rollback: %v\n%s", err, rb.String())
			}
			page(t, site, "v1")
			time.Sleep(time.Second)
			total, failed, bad, first := l.finish()
			// The host restarts: systemd brings the site back by itself.
			m.Reboot(t)
			t.Logf("%s rebooted in %s", m.Name, m.BootTime.Round(time.Millisecond))
			page(t, site, "v1")
			checkSystemdUnits(t, m, site, c, true)
			t.Logf("%s+%s+%s on systemd: %d requests through a code-only ship, a web server reload, a broken release and a rollback: %d failed, %d non-2xx",
				c.web, c.app, c.db, total, failed, bad)
			if total < 50 || failed != 0 || bad != 0 {
				t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
			}
		})
	}
}

// TestTwelveFactorOnAFreshHost ships the second example, which uses
// Django's admin under a manifest storage, to a fresh systemd host with
// its packages: line as the only help, where Debian's Django was
// installed before without what it recommends: collectstatic finds the
// admin's jQuery (which djship adds), the admin's login page
// and its static files are served, and a visit is counted in
// PostgreSQL.
func TestTwelveFactorOnAFreshHost(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	needMachineExample(t)
	m := testenv.BootMachine(t)
	// Something else installed Debian's Django first, without what it
	// recommends: djship adds the recommendations.
	m.Shell(t, "apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-django >/dev/null 2>&1")
	if got := m.Shell(t, "dpkg-query -W -f='${db:Status-Status}' libjs-jquery 2>/dev/null || echo absent"); got == "installed" {
		t.Fatal("libjs-jquery came with python3-django without its recommendations")
	}
	site := twelveSite(t, shipCase{web: "nginx", app: "gunicorn", db: "postgres", machine: m}, 85, nil)
	_, _, out, err := shipRevision(t, site, "v1")
	if err != nil {
		t.Fatalf("the twelve-factor example on a fresh host: %v\n%s", err, out)
	}
	if !strings.Contains(out, "installing libjs-jquery (recommended by the site's packages") {
		t.Errorf("the ship did not say it adds libjs-jquery:\n%s", out)
	}
	if n := visits(t, page(t, site, "v1")); n < 1 {
		t.Errorf("visits = %d", n)
	}
	checkAdminStatic(t, site)
	status, body, err := getPath(t, site, "/admin/login/")
	if err != nil || status != 200 || !strings.Contains(body, "/static/admin/css/base.") {
		t.Errorf("the admin's login page: %d %v\n%s", status, err, body)
	}
	// The site's heartbeat process is a systemd service of its own.
	unit := "djship-" + site.Settings.Instance + "-heartbeat.service"
	if got := m.Shell(t, `systemctl is-active "$1"; systemctl is-enabled "$1"`, unit); got != "active\nenabled" {
		t.Errorf("%s is %q", unit, got)
	}
	if got := m.Shell(t, "dpkg-query -W -f='${db:Status-Status}' libjs-jquery"); got != "installed" {
		t.Errorf("libjs-jquery is %q on the host", got)
	}
}

// needMachineExample stops the test unless fresh machines can boot and
// the example project is here to ship.
func needMachineExample(t testing.TB) {
	t.Helper()
	testenv.NeedMachines(t)
	if _, err := os.Stat(filepath.Join("..", "example", "manage.py")); err != nil {
		t.Fatalf("the example project is missing: %v", err)
	}
}

// checkSystemdUnits checks, on the machine, that systemd runs the
// application server: gunicorn's socket and service units, or the uWSGI
// instances' units; booted says whether the host has restarted since
// djship started them.
func checkSystemdUnits(t *testing.T, m *testenv.Machine, site *sites.Site, c shipCase, booted bool) {
	t.Helper()
	units := []string{c.web + ".service"}
	if c.app == "gunicorn" {
		units = append(units, "gunicorn-"+site.Settings.Instance+".socket", "gunicorn-"+site.Settings.Instance+".service")
	} else {
		// An instance djship started runs in a scope of its own, out of
		// the SSH session that started it; at boot Debian's uwsgi service
		// starts the live one.
		pid := m.Shell(t, `cat /run/uwsgi/app/"$1".a/pid /run/uwsgi/app/"$1".b/pid 2>/dev/null | head -n 1`, site.Settings.Instance)
		cg := m.Shell(t, `sed -n 's/^0:://p' /proc/"$1"/cgroup`, pid)
		scope := m.Shell(t, `systemctl show -P Description "${1##*/}"`, cg)
		want := "uWSGI instance " + site.Settings.Instance
		if booted {
			want = "LSB: Start/stop uWSGI server instance(s)"
		}
		if !strings.Contains(scope, want) {
			t.Errorf("the uWSGI master %s runs in %s (%q), want a unit described as %q", pid, cg, scope, want)
		}
	}
	for _, u := range units {
		if got := m.Shell(t, `systemctl is-active "$1" || true`, u); got != "active" {
			t.Errorf("%s is %q on %s:\n%s", u, got, m.Name, m.Shell(t, `systemctl status --no-pager "$1" 2>&1 || true`, u))
		}
		if got := m.Shell(t, `systemctl is-enabled "$1" 2>&1 || true`, u); got != "enabled" {
			t.Errorf("%s is %q at boot on %s", u, got, m.Name)
		}
	}
}

// checkAdminStatic fetches a file of Django's admin that Debian's Django
// takes from libjs-jquery: collectstatic found it on the fresh host.
func checkAdminStatic(t *testing.T, site *sites.Site) {
	t.Helper()
	status, body, err := getPath(t, site, "/static/admin/js/vendor/jquery/jquery.js")
	if err != nil || status != 200 || !strings.Contains(body, "jQuery") {
		t.Errorf("the admin's jQuery: %d %v (%d bytes)", status, err, len(body))
	}
}

// TestDemoOnAMachineWithOnlyGo runs the README's first command where a
// newcomer would: a fresh Debian machine with nothing but minbase, sshd,
// sudo and Python, and this machine's Go with the module cache (it has
// no other way to the module proxy). `go tool mage demo` must install
// what it needs itself and leave the page answering with its revision.
func TestDemoOnAMachineWithOnlyGo(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	testenv.NeedMachines(t)
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	goroot, modcache, gocache := goEnv("GOROOT"), goEnv("GOMODCACHE"), goEnv("GOCACHE")
	// This machine's Go, its module cache and its build cache are lent to
	// the bare one, at their places here: the build cache holds compiled
	// packages only, so it spares the bare machine's go minutes of
	// compiling and hides no missing install step.
	m := testenv.NewBridge(t).BootLending(t, goroot, modcache, gocache)
	// Go is the lent one; nothing else the demo needs is there.
	if got := m.Shell(t, "command -v git nginx uwsgi curl; dpkg-query -W python3-django 2>/dev/null; true"); got != "" {
		t.Fatalf("the machine is not bare: %q", got)
	}
	// The checkout as a clone has it: the files git tracks.
	files, err := exec.Command("git", "-C", "..", "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	repo := filepath.Join(m.Root, "root", "djship")
	copyFiles := exec.Command("sh", "-c", `mkdir -p "$1" && tar -C .. --null -T - -cf - | tar -C "$1" -xf -`, "sh", repo)
	copyFiles.Stdin = bytes.NewReader(files)
	if out, err := copyFiles.CombinedOutput(); err != nil {
		t.Fatalf("copy the checkout: %v\n%s", err, out)
	}
	start := time.Now()
	out, err := m.Exec(context.Background(), `cd /root/djship && export PATH=`+shquote.Quote(filepath.Join(goroot, "bin"))+`:$PATH HOME=/root GOMODCACHE=`+shquote.Quote(modcache)+` GOCACHE=`+shquote.Quote(gocache)+` GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local && go tool mage demo`)
	if err != nil {
		t.Fatalf("go tool mage demo on a bare machine: %v\n%s", err, out)
	}
	t.Logf("go tool mage demo on a bare machine took %s:\n%s", time.Since(start).Round(time.Second), out)
	live := regexp.MustCompile(`demo (\S+) is live`).FindStringSubmatch(out)
	if live == nil {
		t.Fatalf("the demo did not say what is live:\n%s", out)
	}
	if page := m.Shell(t, "curl -sk https://localhost:8443/"); !strings.Contains(page, `<code id="revision">`+live[1]+`</code>`) {
		t.Errorf("the demo's page does not show %s:\n%s", live[1], page)
	}
}
