package targets

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// fleetSite is the example project on a fleet: an lb host, web hosts, a
// worker host and the db host, reached through the bastion when there
// is one, plain HTTP on port 80. n numbers the project.
func fleetSite(t testing.TB, f *testenv.Fleet, n int, roles []string, fleetYAML string) (*sites.Site, string) {
	t.Helper()
	project := fmt.Sprintf("djship%d", n)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyTree(t, filepath.Join("..", "example"), src)
	var hosts strings.Builder
	for i, r := range roles {
		fmt.Fprintf(&hosts, "      - {address: %s@%s, roles: [%s]}\n", testenv.SudoUser, f.Hosts[i].SSHAddr(), r)
	}
	jump := ""
	if f.Bastion != nil {
		jump = ", proxy_jump: " + f.ProxyJump()
	}
	yaml := fmt.Sprintf(`project: %s
url: %s.test
root: /srv/www
keep_releases: 3
source: {path: src}
%s  environment: {DJANGO_ALLOWED_HOSTS: %s.test}
packages: [python3-django]
app: {workers: 2}
database: {engine: postgres}
processes: {ticker: sleep infinity}
secrets: {keys: [SECRET_KEY, GREETING]}
ssh: {identity: %s, known_hosts: %s%s}
environments:
  test:
%s    hosts:
%s`, project, project, exampleDjango, project, testenv.TestKeys().Sudo, f.KnownHosts, jump, fleetYAML, hosts.String())
	return writeSite(t, dir, project, yaml), src
}

// shipFleet packages the source as revision and ships it to the fleet.
func shipFleet(t *testing.T, site *sites.Site, revision string) (string, error) {
	t.Helper()
	a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = Ship(context.Background(), site, "test", a.Path, Options{Out: &out, Secrets: shipSecrets})
	t.Logf("ship %s:\n%s", revision, out.String())
	return out.String(), err
}

// balancedLoad sends requests through the load balancer at addr from
// several goroutines, each on a new connection and one at most every
// interval, until finished.
func balancedLoad(site *sites.Site, addr string, workers int, interval time.Duration) *load {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return runLoad(workers, interval, func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = site.Settings.URL
		return client.Do(req)
	})
}

// revisionAt is the revision the site's page shows at addr (a web host
// or the load balancer).
func revisionAt(t *testing.T, site *sites.Site, addr string) string {
	t.Helper()
	rev, err := askRevision(site, addr)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// askRevision asks the site at addr for its page once and returns the
// revision it shows.
func askRevision(site *sites.Site, addr string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = site.Settings.URL
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<code id="revision">([^<]*)</code>`).FindSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		return "", fmt.Errorf("%s answers %d without a revision:\n%s", addr, resp.StatusCode, body)
	}
	return string(m[1]), nil
}

// TestFleet ships the example project to a simulated fleet: an nginx
// load balancer, three web hosts, a worker host and a PostgreSQL db
// host, each a fresh systemd machine, all behind a bastion that djship
// reaches them through. Under load through the balancer: a first ship,
// a rolling ship, a release that cannot start (phase 1 fails, no host
// switches), a failure after the switch on one host (every host
// switches back), a rolling rollback, a ship with one host unreachable
// (no host changes), and a rollback that restores the database (once,
// on the db host). No request may fail.
func TestFleet(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	needMachineExample(t)
	f := testenv.NewFleet(t, 6, true)
	roles := []string{"lb", "web", "web", "web", "worker", "db"}
	site, src := fleetSite(t, f, 90, roles, "    fleet: {rolling: {batch: 1, pause: 1}}\n")
	lb, webs, worker, db := f.Hosts[0], f.Hosts[1:4], f.Hosts[4], f.Hosts[5]
	every := func(want string) {
		t.Helper()
		for _, m := range webs {
			if got := revisionAt(t, site, m.Addr); got != want {
				t.Errorf("%s serves %s, want %s", m.Name, got, want)
			}
		}
		if got := worker.Shell(t, "readlink /srv/www/djship90/current"); got != "releases/"+want {
			t.Errorf("the worker host's current is %s, want releases/%s", got, want)
		}
	}
	if out, err := shipFleet(t, site, "v1"); err != nil {
		t.Fatalf("the first ship: %v\n%s", err, out)
	}
	every("v1")
	if got := revisionAt(t, site, lb.Addr); got != "v1" {
		t.Fatalf("the load balancer passes on %s", got)
	}
	if got := db.Shell(t, "grep -c '^hostssl djship90 djship90 ' /etc/postgresql/*/main/pg_hba.conf; grep -c '^host djship90 ' /etc/postgresql/*/main/pg_hba.conf || true"); got != "4\n0" {
		t.Errorf("pg_hba.conf lets %q hosts in over TLS (and without it), want the 4 web and worker hosts over TLS only", got)
	}
	if got := webs[0].Shell(t, "grep -o '\"PGSSLMODE\": \"require\"' /srv/www/djship90/environment.json"); got == "" {
		t.Error("the application does not require TLS to the database")
	}
	for _, m := range []*testenv.Machine{lb, db} {
		if got := m.Shell(t, "ls /srv/www/djship90"); strings.Contains(got, "releases") {
			t.Errorf("%s, which runs no release, has %s", m.Name, got)
		}
	}
	if got := worker.Shell(t, "systemctl is-active djship-djship90-ticker; ls /etc/nginx/sites-enabled"); got != "active\ndefault" {
		t.Errorf("the worker host: %q; want the process active and no site in nginx", got)
	}
	if got := webs[0].Shell(t, "systemctl is-active djship-djship90-ticker || true"); got == "active" {
		t.Error("a web host runs the worker's process")
	}
	var st bytes.Buffer
	statuses, err := Status(context.Background(), site, "test", Options{Out: &st, Secrets: shipSecrets})
	if err != nil {
		t.Fatalf("status: %v\n%s", err, st.String())
	}
	for i, s := range statuses {
		want := map[string]string{"lb": "- - running -", "web": "v1 running running ok", "worker": "v1 - - -", "db": "- - - -"}[roles[i]]
		if got := strings.Join([]string{s.Live, s.App, s.Web, s.Health}, " "); got != want {
			t.Errorf("status of the %s host: live, app, web, health are %q, want %q\n%s", roles[i], got, want, st.String())
		}
	}

	l := balancedLoad(site, lb.Addr, 4, loadInterval)
	index := filepath.Join(src, "notes", "templates", "notes", "index.html")
	good := must(os.ReadFile(index))
	os.WriteFile(index, bytes.Replace(good, []byte("notes</p>"), []byte("notes (v2)</p>"), 1), 0o644)
	out, err := shipFleet(t, site, "v2")
	if err != nil {
		l.finish()
		t.Fatalf("the rolling ship: %v\n%s", err, out)
	}
	every("v2")
	if n := len(regexp.MustCompile(`(?m)changed +migrate `).FindAllString(out, -1)); n != 1 {
		t.Errorf("migrate ran on %d hosts, want 1", n)
	}
	if n := len(regexp.MustCompile(`(?m)changed +database snapshot `).FindAllString(out, -1)); n != 1 || !regexp.MustCompile(`(?m)^\[[^\]]*`+regexp.QuoteMeta(db.Addr)+`[^\]]*\] +changed +database snapshot `).MatchString(out) {
		t.Errorf("%d snapshots, want 1 on the db host", n)
	}
	if !regexp.MustCompile(`4 hosts switched in 4 batches over .* \(switch window .*\)`).MatchString(out) {
		t.Errorf("no word of the batches and the switch window:\n%s", out)
	}

	// Phase 1 fails everywhere: the release cannot start.
	wsgi := filepath.Join(src, "exampleproject", "wsgi.py")
	goodWSGI := must(os.ReadFile(wsgi))
	os.WriteFile(wsgi, append([]byte("raise ImportError('this release cannot start')\n"), goodWSGI...), 0o644)
	out, err = shipFleet(t, site, "broken")
	os.WriteFile(wsgi, goodWSGI, 0o644)
	if err == nil || !strings.Contains(err.Error(), "this release cannot start") {
		t.Errorf("the release that cannot start: %v", err)
	}
	if strings.Contains(out, "changed  switch") {
		t.Errorf("a host switched to a release that cannot start:\n%s", out)
	}
	every("v2")

	// Phase 2 fails on one host after it switched: every host goes back.
	failOn := webs[2].Name
	removeStep := addStepFor(site.Settings.Project, "switch", true, ShellStep("fail on one host", `[ "$(hostname)" != `+failOn+` ] || { echo "failing on purpose on $(hostname)" >&2; exit 1; }`))
	out, err = shipFleet(t, site, "v3")
	removeStep()
	if err == nil || !strings.Contains(err.Error(), "failing on purpose on "+failOn) {
		t.Errorf("the ship that fails on %s after its switch: %v", failOn, err)
	}
	if n := strings.Count(out, "switching back to v2"); n != 3 {
		t.Errorf("%d hosts switched back, want the 3 that had switched (web1, web2 and the failing web3):\n%s", n, out)
	}
	every("v2")

	var rb bytes.Buffer
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &rb, Secrets: shipSecrets}}); err != nil {
		l.finish()
		t.Fatalf("the rolling rollback: %v\n%s", err, rb.String())
	}
	t.Logf("rollback:\n%s", rb.String())
	every("v1")

	// One host cannot be reached: the run stops before any host changes.
	webs[1].Shell(t, "systemctl stop ssh.socket ssh.service 2>/dev/null || systemctl stop ssh")
	out, err = shipFleet(t, site, "v4")
	webs[1].Shell(t, "systemctl start ssh")
	if err == nil || !strings.Contains(err.Error(), webs[1].Addr) {
		t.Errorf("the ship with an unreachable host did not fail naming it: %v\n%s", err, out)
	}
	for _, m := range append(append([]*testenv.Machine{}, webs...), worker) {
		if got := m.Shell(t, "ls /srv/www/djship90/releases"); strings.Contains(got, "v4") {
			t.Errorf("%s has a v4 release folder though a host was unreachable: %s", m.Name, got)
		}
	}
	every("v1")

	// A rollback that restores the database does it once, on the db host.
	if out, err := shipFleet(t, site, "v5"); err != nil {
		l.finish()
		t.Fatalf("ship v5: %v\n%s", err, out)
	}
	rb.Reset()
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &rb, Secrets: shipSecrets}, RestoreDB: true}); err != nil {
		l.finish()
		t.Fatalf("the rollback that restores the database: %v\n%s", err, rb.String())
	}
	restores := regexp.MustCompile(`(?m)^\[([^\]]*)\] restored database djship90 from \S+/v5\.dump`).FindAllStringSubmatch(rb.String(), -1)
	if len(restores) != 1 || !strings.Contains(restores[0][1], db.Addr) {
		t.Errorf("the database was restored %d times (%v), want once on the db host:\n%s", len(restores), restores, rb.String())
	}
	every("v1")
	time.Sleep(time.Second)
	total, failed, bad, first := l.finish()
	t.Logf("through the load balancer: %d requests over a rolling ship, a failed build, a failed switch, a rolling rollback, an unreachable host and a rollback restoring the database: %d failed, %d non-200", total, failed, bad)
	if total < 100 || failed != 0 || bad != 0 {
		t.Errorf("%d requests, %d failed, %d non-200; first problem: %v", total, failed, bad, first)
	}
}
