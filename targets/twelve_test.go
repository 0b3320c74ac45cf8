package targets

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// twelveSite writes a site file for the twelve-factor example
// (example-12factor/) on a stack: its settings read everything from the
// environment, its database from DATABASE_URL, its static files go
// through WhiteNoise's manifest storage into a STATIC_ROOT of its own.
func twelveSite(t *testing.T, c shipCase, n int, sshd *testenv.SSHD) *sites.Site {
	t.Helper()
	project := fmt.Sprintf("twelve%d", n)
	root := "/srv/djship-test-" + project
	os.RemoveAll(root)
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "example-12factor"), filepath.Join(dir, "src"))
	hosts, ssh, database := stackYAML(c, project, sshd)
	yaml := fmt.Sprintf(`project: %[1]s
url: %[1]s.test
root: %[2]s
source: {path: src}
django:
  source_folder: app
  settings_folder: twelve
  settings_module: twelve.settings
  pip_install_requirements: true
  system_site_packages: true
  environment: {DJANGO_ALLOWED_HOSTS: %[1]s.test}
packages: [python3-django, python3-whitenoise, python3-dj-database-url]
webserver: nginx
web: {http_port: %[3]d, https_port: %[4]d}
app_server: %[5]s
tls: {certificate: self-signed}
secrets: {keys: [SECRET_KEY]}
processes: {heartbeat: "python manage.py heartbeat"}
%[6]s
%[7]senvironments:
  test:
%[8]s
`, project, root, 18200+n, 18600+n, c.app, database, ssh, hosts)
	site := writeSite(t, dir, project, yaml)
	t.Cleanup(func() { removeCaseSite(site, c) })
	return site
}

var (
	visitsShown  = regexp.MustCompile(`<span id="visits">(\d+)</span>`)
	manifestLink = regexp.MustCompile(`href="(/static/visits/site\.[0-9a-f]{12}\.css)"`)
)

// TestTwelveFactorProject ships the twelve-factor example as it is
// written, with no module for djship, on sqlite under uWSGI and on
// PostgreSQL under gunicorn over SSH: the page answers with the
// release's revision and its database, the hashed CSS its manifest names
// is served, the visits survive the next release, no secret is in a
// configuration file, and failing deployment checks stop an upgrade.
func TestTwelveFactorProject(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	for _, python := range []string{"whitenoise", "dj_database_url"} {
		if exec.Command(testenv.DjangoPython, "-c", "import "+python).Run() != nil {
			testenv.Missing(t, "Python's "+python, "apt-get install python3-whitenoise python3-dj-database-url")
		}
	}
	cases := []shipCase{
		{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"},
		{web: "nginx", app: "gunicorn", db: "postgres", connection: "ssh"},
	}
	for i, c := range cases {
		t.Run(c.app+"-"+c.db, func(t *testing.T) {
			exec.Command("service", "apache2", "stop").Run()
			site := twelveSite(t, c, 61+i, sshd)
			_, _, out, err := shipRevision(t, site, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "static files: the project's STATIC_ROOT is ") || !strings.Contains(out, "/src/app/staticfiles; static/ links to it") {
				t.Errorf("the output does not say where the static files are")
			}
			body := page(t, site, "v1")
			if _, _, header := get(t, site, "https"); header.Get("Server") != "nginx" {
				t.Errorf("the Server header is %q, want nginx without its version or the application server's", header.Get("Server"))
			}
			vendor := map[string]string{"sqlite": "sqlite", "postgres": "postgresql"}[c.db]
			if !strings.Contains(body, `<span id="database">`+vendor+`</span>`) {
				t.Errorf("the page does not run on %s:\n%s", vendor, body)
			}
			css := manifestLink.FindStringSubmatch(body)
			if css == nil {
				t.Fatalf("the page links no hashed CSS (the manifest storage's):\n%s", body)
			}
			p := NewPaths(site.Settings)
			if _, err := os.Stat(filepath.Join(p.Current, css[1])); err != nil {
				t.Errorf("the web server has no %s under current/: %v", css[1], err)
			}
			if status, got, _ := getPath(t, site, css[1]); status != 200 || !strings.Contains(got, "font-family") {
				t.Errorf("%s answers %d: %s", css[1], status, got)
			}
			first := visits(t, body)
			heartbeat := filepath.Join(NewPaths(site.Settings).Logs, "heartbeat.log")
			waitForLine(t, heartbeat, "v1 beat ")

			// A magefile's own steps run where it put them.
			withAdded(t, func() {
				AddStepBefore("migrate", ShellStep("marker", `touch "$1/hooked"`))
				AddStepAfter("migrate", ManageStep("system checks", "check"))
			})
			_, _, shipped, err := shipRevision(t, site, "v2")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(p.Releases, "v2", "hooked")); err != nil {
				t.Errorf("the step added before migrate did not run: %v", err)
			}
			if !regexp.MustCompile(`changed +marker[\s\S]*changed +migrate[\s\S]*System check identified no issues[\s\S]*changed +system checks[\s\S]*changed +start new workers`).MatchString(shipped) {
				t.Errorf("the added steps did not run in their places:\n%s", shipped)
			}
			// The process ran v1 until the switch, then v2.
			waitForLine(t, heartbeat, "v2 beat ")
			if data, _ := os.ReadFile(heartbeat); !regexp.MustCompile(`v1 stopped after \d+ beats\n(.*\n)*v2 beat 1\n`).Match(data) {
				t.Errorf("the process was not stopped gracefully before v2 started:\n%s", tail(data, 12))
			}
			if statuses, err := Status(context.Background(), site, "test", Options{Out: io.Discard, Secrets: shipSecrets}); err != nil || statuses[0].Processes != "heartbeat running" {
				t.Errorf("status: %+v %v", statuses, err)
			}
			if again := visits(t, page(t, site, "v2")); again <= first {
				t.Errorf("visits went from %d to %d across releases: the database did not survive", first, again)
			}
			// manage.py runs in the application's environment, and
			// Django's errors, tracebacks included, reach mage logs.
			var managed bytes.Buffer
			terminal := remote.Terminal{In: strings.NewReader(""), Out: &managed, Err: &managed}
			check := `import os; print("scheme", os.environ["DATABASE_URL"].split(":")[0], "revision", os.environ["DJSHIP_REVISION"])`
			if err := Manage(context.Background(), site, "test", []string{"shell", "-c", check}, ManageOptions{Options: Options{Secrets: shipSecrets}, Terminal: terminal}); err != nil {
				t.Fatalf("manage: %v\n%s", err, managed.String())
			}
			scheme := map[string]string{"sqlite": "sqlite", "postgres": "postgres"}[c.db]
			if !strings.Contains(managed.String(), "scheme "+scheme+" revision v2") {
				t.Errorf("manage.py shell saw another environment: %s", managed.String())
			}
			managed.Reset()
			if err := Manage(context.Background(), site, "test", []string{"showmigrations", "visits"}, ManageOptions{Options: Options{Secrets: shipSecrets}, Terminal: terminal}); err != nil || !strings.Contains(managed.String(), "[X] 0001_initial") {
				t.Errorf("manage showmigrations: %v\n%s", err, managed.String())
			}
			if c.connection == "ssh" {
				// With TTY the host gives the command a terminal.
				managed.Reset()
				tty := terminal
				tty.TTY = true
				if err := Manage(context.Background(), site, "test", []string{"shell", "-c", "import sys; print('terminal', sys.stdin.isatty())"}, ManageOptions{Options: Options{Secrets: shipSecrets}, Terminal: tty}); err != nil || !strings.Contains(managed.String(), "terminal True") {
					t.Errorf("manage with a terminal: %v\n%s", err, managed.String())
				}
			}
			if status, _, _ := getPath(t, site, "/boom/"); status != 500 {
				t.Errorf("/boom/ answers %d, want 500", status)
			}
			var logged bytes.Buffer
			if err := Logs(context.Background(), site, "test", LogsOptions{Options: Options{Out: &logged, Secrets: shipSecrets}, Lines: 200}); err != nil {
				t.Fatalf("logs: %v", err)
			}
			for _, want := range []string{"Traceback (most recent call last)", "RuntimeError: the twelve-factor example fails on purpose", "GET /boom/"} {
				if !strings.Contains(logged.String(), want) {
					t.Errorf("mage logs shows no %q:\n%s", want, logged.String())
				}
			}
			if strings.Contains(logged.String(), shipSecrets["SECRET_KEY"]) {
				t.Error("the logs show the secret key")
			}
			// -f goes on printing what the logs get: the process's beats.
			var followed bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			Logs(ctx, site, "test", LogsOptions{Options: Options{Out: &followed, Secrets: shipSecrets}, Lines: 1, Follow: true})
			cancel()
			if beats := regexp.MustCompile(`v2 beat \d+`).FindAllString(followed.String(), -1); len(beats) < 5 {
				t.Errorf("following the logs for 3 s shows %d beats:\n%s", len(beats), followed.String())
			}

			if c.db == "sqlite" {
				// Django's deployment checks warn about this project (no
				// HSTS, for one): with django.check_deploy the upgrade
				// stops before anything switches.
				env := site.Environments["test"]
				eachHost(env, func(s *sites.Settings) { s.Django.CheckDeploy = true })
				_, _, out, err := shipRevision(t, site, "v3")
				if err == nil || !strings.Contains(err.Error(), `step "deploy checks"`) || !strings.Contains(out, "security.W004") {
					t.Fatalf("an upgrade with failing deployment checks: %v", err)
				}
				page(t, site, "v2")
				eachHost(env, func(s *sites.Settings) { s.Django.CheckDeploy = false })
			}
			// A rollback puts the process back on v1.
			if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: io.Discard, Secrets: shipSecrets}}); err != nil {
				t.Fatal(err)
			}
			page(t, site, "v1")
			waitForLine(t, heartbeat, "v2 stopped after ")
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				data, _ := os.ReadFile(heartbeat)
				_, after, _ := strings.Cut(string(data), "v2 stopped after ")
				if strings.Contains(after, "\nv1 beat 1\n") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the rollback the process does not run v1:\n%s", tail(data, 12))
				}
			}
			for _, f := range []string{"/etc/uwsgi/apps-available/" + site.Settings.Project + ".a.ini", "/etc/init.d/gunicorn-" + site.Settings.Project} {
				if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), shipSecrets["SECRET_KEY"]) {
					t.Errorf("%s holds the secret key", f)
				}
			}
			if out, _ := exec.Command("stat", "-c", "%a %U %G", p.Environment).Output(); strings.TrimSpace(string(out)) != "640 root "+site.Settings.Project {
				t.Errorf("%s is %s, want 640 root %s", p.Environment, out, site.Settings.Project)
			}
		})
	}
}

// visits reads the visit count the page shows.
func visits(t *testing.T, body string) int {
	t.Helper()
	m := visitsShown.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page shows no visit count:\n%s", body)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// TestCustomTargetOnHosts runs a magefile's own target, the database
// backup of the README's "Extending djship", over djship's connections.
func TestCustomTargetOnHosts(t *testing.T) {
	site, _ := liveExample(t, 62)
	var out bytes.Buffer
	var backups []string
	err := OnHosts(context.Background(), site, "test", "backup", Options{Out: &out, Secrets: shipSecrets}, func(ctx context.Context, d *Deploy) error {
		if d.LiveRelease() != filepath.Join(d.Paths.Releases, "v1") {
			return fmt.Errorf("the live release is %q", d.LiveRelease())
		}
		db := filepath.Join(d.Paths.DB, d.Settings.Database.Path)
		to := filepath.Join(d.Paths.Snapshots, "backup-test.sqlite3")
		backups = append(backups, to)
		_, err := d.Host.Run(ctx, remote.Command{Script: remote.Sh("sqlite3", db, ".backup '"+to+"'"), Become: true})
		return err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(backups) != 1 {
		t.Fatalf("the work ran on %d hosts", len(backups))
	}
	if tables := sh(t, `sqlite3 "$1" ".tables"`, backups[0]); !strings.Contains(tables, "notes_note") {
		t.Errorf("the backup holds the tables %q", tables)
	}
	if !regexp.MustCompile(`backup\s+HOST\s+RELEASE`).MatchString(out.String()) || !strings.Contains(out.String(), "1 changed") {
		t.Errorf("no summary table:\n%s", out.String())
	}
	failed := OnHosts(context.Background(), site, "test", "backup", Options{Out: &out, Secrets: shipSecrets}, func(ctx context.Context, d *Deploy) error {
		return fmt.Errorf("the disk is full")
	})
	if failed == nil || !strings.Contains(failed.Error(), "backup of test failed on 1 of 1 hosts") || !strings.Contains(failed.Error(), "the disk is full") {
		t.Errorf("a failing target: %v", failed)
	}
}

// waitForLine waits up to 15 s for a file to hold a line starting with prefix.
func waitForLine(t *testing.T, file, prefix string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if data, err := os.ReadFile(file); err == nil && regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(prefix)).Match(data) {
			return
		}
	}
	data, _ := os.ReadFile(file)
	t.Fatalf("%s has no line starting %q:\n%s", file, prefix, tail(data, 12))
}

// tail is the last n lines of data.
func tail(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestShipWhileTheSiteWrites drives load through the web server at the
// twelve-factor example, whose every request writes a row, on sqlite and
// on PostgreSQL under uWSGI and gunicorn, while djship ships a release,
// ships a release that cannot start and one whose every page fails, ships
// again, and rolls back twice: on sqlite the snapshot waits for the
// writers' locks instead of failing, on PostgreSQL pg_dump runs beside
// them, the broken releases reach no visitor, the second rollback walks
// further back, and no request fails or is lost.
func TestShipWhileTheSiteWrites(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	cases := []shipCase{
		{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"},
		{web: "nginx", app: "gunicorn", db: "postgres", connection: "ssh"},
		{web: "nginx", app: "gunicorn", db: "sqlite", connection: "ssh"},
		{web: "nginx", app: "uwsgi", db: "postgres", connection: "local"},
	}
	for i, c := range cases {
		t.Run(c.app+"-"+c.db, func(t *testing.T) {
			exec.Command("service", "apache2", "stop").Run()
			site := twelveSite(t, c, 66+i, sshd)
			if _, _, out, err := shipRevision(t, site, "v1"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			before := visits(t, page(t, site, "v1"))
			wsgi := filepath.Join(site.Root, "src", "app", "twelve", "wsgi.py")
			views := filepath.Join(site.Root, "src", "app", "visits", "views.py")
			goodWSGI, _ := os.ReadFile(wsgi)
			goodViews, _ := os.ReadFile(views)
			rollback := func(want string) {
				t.Helper()
				var out bytes.Buffer
				if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}}); err != nil {
					t.Fatalf("rollback: %v\n%s", err, out.String())
				}
				page(t, site, want)
			}
			l := startLoad(site, 6)
			time.Sleep(time.Second)
			if _, _, out, err := shipRevision(t, site, "v2"); err != nil {
				l.finish()
				t.Fatalf("the ship under write load failed: %v\n%s", err, out)
			}
			os.WriteFile(wsgi, append([]byte("raise ImportError('this release cannot start')\n"), goodWSGI...), 0o644)
			_, _, _, errStart := shipRevision(t, site, "broken-start")
			os.WriteFile(wsgi, goodWSGI, 0o644)
			os.WriteFile(views, append(goodViews, []byte("\n\ndef index(request):\n    raise RuntimeError('no page of this release works')\n")...), 0o644)
			_, _, _, errPages := shipRevision(t, site, "broken-pages")
			os.WriteFile(views, goodViews, 0o644)
			if _, _, out, err := shipRevision(t, site, "v3"); err != nil {
				l.finish()
				t.Fatalf("the ship after the broken ones failed: %v\n%s", err, out)
			}
			rollback("v2")
			rollback("v1") // walks back, not forward to v3
			time.Sleep(time.Second)
			total, failed, bad, first := l.finish()
			for name, err := range map[string]error{"cannot start": errStart, "every page fails": errPages} {
				if err == nil || !strings.Contains(err.Error(), `step "start new workers"`) {
					t.Errorf("the release that %s: %v", name, err)
				}
			}
			t.Logf("%s, %s: %d writing requests through 4 ships (2 of broken releases) and 2 rollbacks: %d failed, %d non-2xx", c.app, c.db, total, failed, bad)
			if total < 100 || failed != 0 || bad != 0 {
				t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
			}
			if after := visits(t, page(t, site, "v1")); after < before+int(total)-1 {
				t.Errorf("visits went from %d to %d over %d requests: writes were lost", before, after, total)
			}
		})
	}
}
