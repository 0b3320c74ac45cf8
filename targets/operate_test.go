package targets

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// load sends requests to the site through the web server from several
// goroutines, each on a new connection, until stopped; it counts what a
// visitor would notice.
type load struct {
	total, failed, bad atomic.Int64
	firstFailure       atomic.Value
	stop               chan struct{}
	wg                 sync.WaitGroup
}

// loadInterval is the least time between the starts of two requests of
// one load goroutine in the tests: 4 goroutines make 40 requests a second
// at most, a busy site's steady traffic, which keeps requests in flight
// through every reload and switch without taking the CPU from the ship it
// watches. Back to back, 4 goroutines sent over 200 requests a second
// (5 681 in the 25 s of an image build and ship of TestContainerMode) on
// a 2-core machine, and the web, application and database processes
// serving them slowed every test that ran beside them. The benchmarks
// still load back to back.
const loadInterval = 100 * time.Millisecond

func startLoad(site *sites.Site, workers int) *load {
	port := site.Settings.Web.HTTPSPort
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: site.Settings.URL},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(siteIP(site), strconv.Itoa(port)))
			},
		},
	}
	url := fmt.Sprintf("https://%s:%d/", site.Settings.URL, port)
	return runLoad(workers, loadInterval, func() (*http.Response, error) { return client.Get(url) })
}

// runLoad sends requests from several goroutines until finished, each
// starting one at most every interval (0: back to back): each failed
// connection and each answer that is not 2xx counts.
func runLoad(workers int, interval time.Duration, request func() (*http.Response, error)) *load {
	l := &load{stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			next := time.Now()
			for {
				select {
				case <-l.stop:
					return
				case <-time.After(time.Until(next)):
				}
				next = time.Now().Add(interval)
				l.total.Add(1)
				resp, err := request()
				if err != nil {
					l.failed.Add(1)
					l.firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					l.bad.Add(1)
					l.firstFailure.CompareAndSwap(nil, resp.Status)
				}
			}
		}()
	}
	return l
}

func (l *load) finish() (total, failed, bad int64, first any) {
	close(l.stop)
	l.wg.Wait()
	return l.total.Load(), l.failed.Load(), l.bad.Load(), l.firstFailure.Load()
}

// TestZeroDowntime drives load through the web server while djship ships
// a new release (reloading nginx too) and rolls it back: no connection
// may fail and no answer may be other than 2xx.
func TestZeroDowntime(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	cases := []shipCase{
		{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"},
		{web: "nginx", app: "gunicorn", db: "sqlite", connection: "ssh"},
	}
	for i, c := range cases {
		t.Run(c.app, func(t *testing.T) {
			exec.Command("service", "apache2", "stop").Run()
			site, _ := exampleSite(t, c, 20+i, sshd)
			if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
				t.Fatal(err)
			}
			page(t, site, "v1")

			l := startLoad(site, 4)
			time.Sleep(time.Second)
			// v2 also changes the web server's configuration: nginx reloads.
			env := site.Environments["test"]
			env.Hosts[0].Settings.Web.ClientMaxBodySize = "40m"
			if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
				l.finish()
				t.Fatal(err)
			}
			page(t, site, "v2")
			start := time.Now()
			_, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: io.Discard, Secrets: shipSecrets}})
			rollbackTime := time.Since(start)
			if err != nil {
				l.finish()
				t.Fatal(err)
			}
			page(t, site, "v1")
			time.Sleep(time.Second)
			total, failed, bad, first := l.finish()
			t.Logf("%s: %d requests through a ship with an nginx reload and a rollback: %d failed connections, %d non-2xx answers (rollback took %v)",
				c.app, total, failed, bad, rollbackTime.Round(time.Millisecond))
			if total < 50 || failed != 0 || bad != 0 {
				t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
			}
		})
	}
}

// TestBrokenReleaseServesNoRequest ships, under load, releases that
// cannot serve: one whose WSGI module cannot be imported, one whose every
// page is a server error. Under uWSGI the new instance fails beside the
// live one; under gunicorn the release fails on a trial gunicorn before
// the reload. Nothing switches, no visitor gets an error, and the error
// carries the traceback, the path of the full log and at most about 20
// lines of it.
func TestBrokenReleaseServesNoRequest(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	servers := []struct {
		c shipCase
		n int
	}{
		{shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"}, 24},
		{shipCase{web: "nginx", app: "gunicorn", db: "sqlite", connection: "ssh"}, 28},
	}
	breaks := []struct {
		name, file, prepend, append, traceback string
	}{
		{"wsgi.py raises", "exampleproject/wsgi.py", "raise ImportError('the new release cannot start')\n", "", "ImportError: the new release cannot start"},
		{"every page fails", "notes/views.py", "", "\n\ndef index(request):\n    raise RuntimeError('no page of this release works')\n", "RuntimeError: no page of this release works"},
	}
	for _, server := range servers {
		t.Run(server.c.app, func(t *testing.T) {
			exec.Command("service", "apache2", "stop").Run()
			site, src := exampleSite(t, server.c, server.n, sshd)
			if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
				t.Fatal(err)
			}
			page(t, site, "v1")
			for i, b := range breaks {
				t.Run(b.name, func(t *testing.T) {
					file := filepath.Join(src, b.file)
					good, _ := os.ReadFile(file)
					os.WriteFile(file, []byte(b.prepend+string(good)+b.append), 0o644)
					defer os.WriteFile(file, good, 0o644)
					revision := fmt.Sprintf("broken%d", i)
					l := startLoad(site, 4)
					time.Sleep(500 * time.Millisecond)
					start := time.Now()
					_, _, out, err := shipRevision(t, site, revision)
					took := time.Since(start)
					time.Sleep(500 * time.Millisecond)
					total, failed, bad, first := l.finish()
					if err == nil {
						t.Fatal("a release that cannot serve shipped")
					}
					// How long the failing step took to say so.
					stepTook := "?"
					if m := regexp.MustCompile(`start new workers \(([^)]+)\)`).FindStringSubmatch(out); m != nil {
						stepTook = m[1]
					}
					t.Logf("%s, %s: %d requests during the broken ship (%v, of which the failing step %s): %d failed, %d non-2xx; the error has %d lines",
						server.c.app, b.name, total, took.Round(time.Millisecond), stepTook, failed, bad, strings.Count(err.Error(), "\n")+1)
					if total < 20 || failed != 0 || bad != 0 {
						t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
					}
					for _, want := range []string{`step "start new workers"`, b.traceback, "the live release keeps serving", "application server log (the end of /"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("the error lacks %q:\n%v", want, err)
						}
					}
					if lines := strings.Count(err.Error(), "\n") + 1; lines > 30 {
						t.Errorf("the error has %d lines, more than fit on a screen:\n%v", lines, err)
					}
					if strings.Contains(err.Error(), "GET /") {
						t.Errorf("the error shows access-log lines:\n%v", err)
					}
					if strings.Contains(out, "switching back") {
						t.Errorf("the broken release was switched to:\n%s", out)
					}
					page(t, site, "v1")
					if state := releasesOnHost(t, site)[revision]; state != "failed" {
						t.Errorf("the broken release is %q", state)
					}
					if server.c.app == "uwsgi" {
						// Only the live instance runs.
						if n := strings.Count(sh(t, `ls /etc/uwsgi/apps-enabled/ | grep -c "^$1[.][ab][.]ini$" || true`, site.Settings.Project), "1"); n != 1 {
							t.Errorf("%s has %d enabled uWSGI instances, want 1", site.Settings.Project, n)
						}
					} else if left := sh(t, `ls -d /run/djship-trial.* 2>/dev/null || true`); left != "" {
						t.Errorf("the trial gunicorn left %s", left)
					}
				})
			}
			// A good release ships after them.
			if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
				t.Fatal(err)
			}
			page(t, site, "v2")
		})
	}
}

// failAfterSwitch is a health check that always fails: what the
// recovery after the switch meets when the site does not answer.
type failAfterSwitch struct{}

func (failAfterSwitch) Name() string { return "health check" }

func (failAfterSwitch) Run(ctx context.Context, d *Deploy) (bool, error) {
	return false, fmt.Errorf("health check failed on purpose")
}

// TestHealthCheckRollsBack fails an upgrade after the switch, under load:
// current and app.sock go back to the old release, whose instance never
// stopped, the new instance stops, and no visitor gets an error.
func TestHealthCheckRollsBack(t *testing.T) {
	site, _ := liveExample(t, 25)
	before := masterPID(t, site)
	withSequence(t, func(seq sequence) sequence { return replaced(t, seq, "health check", failAfterSwitch{}) })
	l := startLoad(site, 4)
	time.Sleep(500 * time.Millisecond)
	_, _, out, err := shipRevision(t, site, "v2")
	time.Sleep(500 * time.Millisecond)
	total, failed, bad, first := l.finish()
	if err == nil || !strings.Contains(err.Error(), "health check failed on purpose") {
		t.Fatalf("the upgrade did not fail at the health check: %v", err)
	}
	if !strings.Contains(out, "switching back to v1") || !strings.Contains(out, "v1 is live again and answers") {
		t.Errorf("no word of the automatic rollback:\n%s", out)
	}
	page(t, site, "v1")
	if after := masterPID(t, site); after != before {
		t.Errorf("the old instance was replaced (master %s, now %s): switching back should only move the link", before, after)
	}
	if total < 20 || failed != 0 || bad != 0 {
		t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
	}
	if state := releasesOnHost(t, site)["v2"]; state != "failed" {
		t.Errorf("the release that failed is %q", state)
	}
}

// dropConnection is a step that kills the host's SSH sessions, as a
// network that drops the connection would, then runs a command on it.
type dropConnection struct {
	t    *testing.T
	sshd *testenv.SSHD
}

func (dropConnection) Name() string { return "drop the connection" }

func (s dropConnection) Run(ctx context.Context, d *Deploy) (bool, error) {
	for _, pid := range s.sshd.SessionProcesses(s.t) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	_, err := d.run(ctx, "sleep 5")
	return true, err
}

// TestDroppedConnectionIsSurvivable kills the SSH connection in the middle
// of an upgrade, after the new release was unpacked: djship connects
// again, marks the release failed and releases its lock, so the next ship
// needs no unlock; the site served the live release throughout.
func TestDroppedConnectionIsSurvivable(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	exec.Command("service", "apache2", "stop").Run()
	site, _ := exampleSite(t, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "ssh"}, 29, sshd)
	if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
		t.Fatal(err)
	}
	p := NewPaths(site.Settings)
	restore := withSequence(t, func(seq sequence) sequence {
		seq, err := seq.insert("database snapshot", false, dropConnection{t, sshd})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	})
	l := startLoad(site, 2)
	_, _, out, err := shipRevision(t, site, "dropped")
	restore()
	total, failed, bad, first := l.finish()
	if err == nil || !errors.Is(err, remote.ErrConnectionLost) {
		t.Fatalf("the upgrade did not fail with the lost connection: %v", err)
	}
	if !strings.Contains(out, "connected again") {
		t.Errorf("no word of connecting again:\n%s", out)
	}
	if _, err := os.Stat(p.Lock); err == nil {
		t.Error("the lock is still held")
	}
	if state := releasesOnHost(t, site)["dropped"]; state != "failed" {
		t.Errorf("the half-built release is %q, want failed", state)
	}
	if total < 10 || failed != 0 || bad != 0 {
		t.Errorf("%d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
	}
	page(t, site, "v1")
	// The next ship needs no unlock.
	if _, _, out, err := shipRevision(t, site, "v2"); err != nil {
		t.Fatalf("the ship after the dropped one: %v\n%s", err, out)
	}
	page(t, site, "v2")
	if _, ok := releasesOnHost(t, site)["dropped"]; ok {
		t.Error("the failed release was not pruned")
	}
}

// masterPID is the uWSGI master that app.sock leads to.
func masterPID(t *testing.T, site *sites.Site) string {
	_, app := masterPIDs(t, site)
	return app
}

func TestLocks(t *testing.T) {
	site, _ := liveExample(t, 25)
	p := NewPaths(site.Settings)
	hold := func(info string) {
		os.MkdirAll(p.Lock, 0o700)
		os.WriteFile(filepath.Join(p.Lock, "info"), []byte(info+"\n"), 0o600)
	}
	var said bytes.Buffer
	upgrade := func(revision string, wait time.Duration) error {
		a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
		if err != nil {
			t.Fatal(err)
		}
		said.Reset()
		_, err = Upgrade(context.Background(), site, "test", a.Path, Options{Out: &said, Secrets: shipSecrets, LockWait: wait})
		return err
	}

	// Held by a run on another machine: refused, naming the holder.
	hold("user=alice host=ci-runner-7 pid=4242 time=" + time.Now().UTC().Format(time.RFC3339) + " target=upgrade:test revision=abc123")
	err := upgrade("v2", 0)
	if err == nil || !strings.Contains(err.Error(), "upgrade:test of alice on ci-runner-7 (pid 4242") || !strings.Contains(err.Error(), "mage unlock:test") {
		t.Errorf("a held lock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Lock, "info")); err != nil {
		t.Error("a refused run removed someone else's lock")
	}
	// mage unlock breaks it, naming the holder.
	var out bytes.Buffer
	if err := Unlock(context.Background(), site, "test", Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "removed the lock held by upgrade:test of alice") {
		t.Errorf("unlock says:\n%s", out.String())
	}

	// Held by a machine with this one's host name whose process ID runs
	// nothing here (another laptop called the same): it may still run,
	// so it is refused.
	host, _ := os.Hostname()
	dead := exec.Command("true")
	dead.Run()
	hold(fmt.Sprintf("user=eve host=%s pid=%d time=%s target=upgrade:test revision=old run=0 machine=0123456789ab", host, dead.Process.Pid, time.Now().UTC().Format(time.RFC3339)))
	if err := upgrade("v2", 0); err == nil || !strings.Contains(err.Error(), "upgrade:test of eve") || strings.Contains(err.Error(), "stale") {
		t.Errorf("a lock of another machine with this host name: %v", err)
	}
	// Without a machine id (a lock of an older djship): refused as well.
	hold(fmt.Sprintf("user=eve host=%s pid=%d time=%s target=upgrade:test revision=old", host, dead.Process.Pid, time.Now().UTC().Format(time.RFC3339)))
	if err := upgrade("v2", 0); err == nil || !strings.Contains(err.Error(), "upgrade:test of eve") {
		t.Errorf("a lock without a machine id: %v", err)
	}

	// Held by a process of this machine that is gone (a run killed with
	// SIGKILL): the next run breaks it, says so, and ships.
	hold(fmt.Sprintf("user=bob host=%s pid=%d time=%s target=upgrade:test revision=old run=1 machine=%s", host, dead.Process.Pid, time.Now().UTC().Format(time.RFC3339), thisMachine()))
	if err := upgrade("v2", 0); err != nil {
		t.Fatalf("a stale lock of a process that no longer runs: %v\n%s", err, said.String())
	}
	if !strings.Contains(said.String(), "broke the lock left by upgrade:test of bob on "+host) || !strings.Contains(said.String(), "that process no longer runs") {
		t.Errorf("the run that broke a stale lock says:\n%s", said.String())
	}
	page(t, site, "v2")
	// Held in this process's name by a run of it that has ended (its host
	// was unreachable when it would have released it): broken too.
	hold(fmt.Sprintf("user=bob host=%s pid=%d time=%s target=upgrade:test revision=old run=2 machine=%s", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339), thisMachine()))
	if err := upgrade("v2b", 0); err != nil || !strings.Contains(said.String(), "the run of this process that took it has ended") {
		t.Fatalf("a stale lock of an ended run of this process: %v\n%s", err, said.String())
	}

	// Waiting for the lock: the other run finishes within the wait.
	hold("user=carol host=elsewhere pid=1 time=" + time.Now().UTC().Format(time.RFC3339) + " target=upgrade:test revision=x")
	time.AfterFunc(3*time.Second, func() { os.RemoveAll(p.Lock) })
	if err := upgrade("v3", time.Minute); err != nil {
		t.Errorf("waiting for the lock: %v", err)
	}
	page(t, site, "v3")
}

// TestCancelDuringMigrate stops a ship with Ctrl-C while a migration runs:
// the lock is released, the live site is untouched.
func TestCancelDuringMigrate(t *testing.T) {
	site, src := liveExample(t, 26)
	os.WriteFile(filepath.Join(src, "notes", "migrations", "0002_slow.py"), []byte("import time\nfrom django.db import migrations\n\ndef slow(apps, schema_editor):\n    time.sleep(60)\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunPython(slow)]\n"), 0o644)
	a, err := buildRelease(t, site, map[string]string{"REVISION": "slow"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Django prints "Applying notes.0002_slow..." without a newline until
	// the migration ends; "Running migrations:" comes just before it.
	out := &watchWriter{want: "Running migrations:", seen: make(chan struct{})}
	go func() {
		<-out.seen
		time.Sleep(2 * time.Second)
		cancel() // what Ctrl-C does to a mage target
	}()
	start := time.Now()
	_, err = Upgrade(ctx, site, "test", a.Path, Options{Out: out, Secrets: shipSecrets})
	if err == nil || !strings.Contains(err.Error(), `step "migrate"`) || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Ctrl-C took %v to stop the ship", d)
	}
	p := NewPaths(site.Settings)
	if _, err := os.Stat(p.Lock); err == nil {
		t.Error("the lock is still held")
	}
	page(t, site, "v1")
	if state := releasesOnHost(t, site)["slow"]; state != "failed" {
		t.Errorf("the cancelled release is %q", state)
	}
	if out, _ := exec.Command("pgrep", "-f", "manage.py migrate").Output(); len(out) > 0 {
		t.Errorf("the migration still runs: %s", out)
	}
}

// watchWriter closes seen when the output shows want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

// TestRollbackRestoresDatabase rolls back across a migration: without
// the flag it warns and keeps the data; with it the snapshot is restored
// and the database as it was is kept beside it.
func TestRollbackRestoresDatabase(t *testing.T) {
	site, src := liveExample(t, 27)
	p := NewPaths(site.Settings)
	db := filepath.Join(p.DB, "db.sqlite3")
	sh(t, `sqlite3 "$1" "INSERT INTO notes_note (text, created) VALUES ('before v2', CURRENT_TIMESTAMP)"`, db)
	os.WriteFile(filepath.Join(src, "notes", "migrations", "0002_table.py"), []byte("from django.db import migrations\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunSQL('CREATE TABLE notes_extra (id integer)', 'DROP TABLE notes_extra')]\n"), 0o644)
	if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
		t.Fatal(err)
	}
	sh(t, `sqlite3 "$1" "INSERT INTO notes_note (text, created) VALUES ('after v2', CURRENT_TIMESTAMP)"`, db)

	// Without --restore-db: a warning that lists the migration; data kept.
	var out bytes.Buffer
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "the database has migrations v1 does not know: notes.0002_table") {
		t.Errorf("no warning about the newer migration:\n%s", out.String())
	}
	if rows := sh(t, `sqlite3 "$1" "SELECT count(*) FROM notes_note"`, db); rows != "2" {
		t.Errorf("a plain rollback changed the data: %s rows", rows)
	}
	page(t, site, "v1")

	// Back to v2, then down again with the restore.
	out.Reset()
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}, To: "v2"}); err != nil {
		t.Fatalf("rollback to v2: %v\n%s", err, out.String())
	}
	page(t, site, "v2")
	out.Reset()
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}, To: "v1", RestoreDB: true}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	page(t, site, "v1")
	if rows := sh(t, `sqlite3 "$1" "SELECT text FROM notes_note"`, db); rows != "before v2" {
		t.Errorf("after the restore the notes are %q, want the snapshot's", rows)
	}
	if tables := sh(t, `sqlite3 "$1" ".tables notes_extra"`, db); tables != "" {
		t.Errorf("the restored database still has v2's table")
	}
	kept, _ := filepath.Glob(filepath.Join(p.Snapshots, "before-rollback-*.sqlite3"))
	if len(kept) != 1 {
		t.Fatalf("snapshots of the replaced database: %v", kept)
	}
	if rows := sh(t, `sqlite3 "$1" "SELECT count(*) FROM notes_note"`, kept[0]); rows != "2" {
		t.Errorf("the kept snapshot has %s notes, want both", rows)
	}

	// status and releases tell the story.
	statuses, err := Status(context.Background(), site, "test", Options{Out: io.Discard, Secrets: shipSecrets})
	if err != nil {
		t.Fatal(err)
	}
	s := statuses[0]
	if s.Live != "v1" || s.Revision != "v1" || s.Previous != "v2" || s.Kept != 2 || s.App != "running" || s.Web != "running" || s.Lock != "free" || s.Health != "ok" {
		t.Errorf("status = %+v", s)
	}
	out.Reset()
	if err := Releases(context.Background(), site, "test", Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	// Each rollback row names the release it reached and the one it left;
	// only the last row of the live release is marked live.
	for _, want := range []string{`upgrade +v1 +- `, `upgrade +v2 +v1 `, `rollback +v1 +v2 .*ok +\n`, `rollback +v2 +v1 `, `rollback +v1 +v2 .*ok +\(live\)`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("releases lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "(live)"); n != 1 {
		t.Errorf("%d rows marked live:\n%s", n, out.String())
	}
}

// TestNextShipWhileOldWorkersDrain ships twice in a row while a visitor
// still holds a connection to the instance the first ship retires: the
// second ship starts its release in that slot only once the connection is
// done, and the first ship's retire, still waiting on the host, never
// stops the instance that replaced it.
func TestNextShipWhileOldWorkersDrain(t *testing.T) {
	site, _ := liveExample(t, 26)
	p := NewPaths(site.Settings)
	oldSocket, err := os.Readlink(p.AppSocket)
	if err != nil {
		t.Fatal(err)
	}
	visitor, err := net.Dial("unix", oldSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer visitor.Close()
	if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
		t.Fatal(err)
	}
	page(t, site, "v2")
	// The slot v3 starts in is the one still draining: the visitor
	// leaves only once v3 is about to start there.
	a, err := buildRelease(t, site, map[string]string{"REVISION": "v3"})
	if err != nil {
		t.Fatal(err)
	}
	watch := &watchWriter{want: "permissions (", seen: make(chan struct{})}
	go func() {
		<-watch.seen
		time.Sleep(700 * time.Millisecond)
		visitor.Close()
	}()
	opts := Options{Out: watch, Secrets: shipSecrets}
	if _, err := Ship(context.Background(), site, "test", a.Path, opts); err != nil {
		t.Fatalf("%v\n%s", err, watch.buf.String())
	}
	t.Logf("v3:\n%s", watch.buf.String())
	if !strings.Contains(watch.buf.String(), "start new workers (") {
		t.Fatalf("no start step:\n%s", watch.buf.String())
	}
	page(t, site, "v3")
	if now, _ := os.Readlink(p.AppSocket); now != oldSocket {
		t.Fatalf("v3 runs behind %s, want the slot v1 ran in (%s)", now, oldSocket)
	}
	master := masterPID(t, site)
	time.Sleep(3 * time.Second) // the first ship's retire gives up meanwhile
	page(t, site, "v3")
	if again := masterPID(t, site); again != master {
		t.Errorf("the instance serving v3 changed from %s to %s", master, again)
	}
	if out, err := exec.Command("kill", "-0", master).CombinedOutput(); err != nil {
		t.Errorf("the instance serving v3 (%s) was stopped: %s", master, out)
	}
}

// TestStatusWithAnUnreachableHost asks for the status of an environment
// one of whose hosts cannot be reached: the table still shows the live
// host in full, the other as a row that says why, and the error names it.
func TestStatusWithAnUnreachableHost(t *testing.T) {
	site, _ := liveExample(t, 60)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: the connection is refused
	f, err := os.OpenFile(site.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "  pair:\n    hosts:\n      - {address: localhost, connection: local}\n      - {address: \"root@127.0.0.1:%d\", connection: ssh}\n", closed)
	f.Close()
	site, err = sites.Load(site.File)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	statuses, err := Status(context.Background(), site, "pair", Options{Out: &out, Secrets: shipSecrets})
	if err == nil || !strings.Contains(err.Error(), "status of pair failed on 1 of 2 hosts") || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", closed)) {
		t.Fatalf("error: %v", err)
	}
	if len(statuses) != 2 {
		t.Fatalf("statuses: %+v", statuses)
	}
	if s := statuses[0]; s.Live != "v1" || s.Health != "ok" || s.App != "running" {
		t.Errorf("the reachable host: %+v", s)
	}
	unreachable := fmt.Sprintf("root@127.0.0.1:%d", closed)
	if s := statuses[1]; s.Host != unreachable || s.Live != "?" || !strings.HasPrefix(s.Health, "unknown: "+unreachable+": ") {
		t.Errorf("the unreachable host: %+v", s)
	}
	table := out.String()
	for _, want := range []string{"local", fmt.Sprintf("127.0.0.1:%d", closed), "v1", "unknown: "} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}

	out.Reset()
	err = Releases(context.Background(), site, "pair", Options{Out: &out, Secrets: shipSecrets})
	if err == nil || !regexp.MustCompile(`upgrade +v1 +- +v1 `).MatchString(out.String()) || !strings.Contains(out.String(), "cannot read the deploy log: "+unreachable) {
		t.Errorf("releases: %v\n%s", err, out.String())
	}
}

// TestRollbackRestoresPostgreSQL rolls back across a migration that made
// a table, restoring PostgreSQL's snapshot: the table is gone with the
// rest of what came after the snapshot, so the release that made it
// migrates again on the next ship (pg_restore --clean alone would leave
// the table, and that migrate would fail on "relation already exists").
func TestRollbackRestoresPostgreSQL(t *testing.T) {
	needExample(t)
	exec.Command("service", "apache2", "stop").Run() // nginx needs port 80
	site, src := exampleSite(t, shipCase{web: "nginx", app: "gunicorn", db: "postgres", connection: "local"}, 30, nil)
	psql := func(query string) string {
		return sh(t, `runuser -u postgres -- psql -d djship30 -Atc "$1"`, query)
	}
	if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
		t.Fatal(err)
	}
	psql("INSERT INTO notes_note (text, created) VALUES ('before v2', now())")
	os.WriteFile(filepath.Join(src, "notes", "migrations", "0002_table.py"), []byte("from django.db import migrations\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunSQL('CREATE TABLE notes_extra (id serial primary key)', 'DROP TABLE notes_extra')]\n"), 0o644)
	if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
		t.Fatal(err)
	}
	psql("INSERT INTO notes_note (text, created) VALUES ('after v2', now())")
	var out bytes.Buffer
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}, RestoreDB: true}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	page(t, site, "v1")
	if got := psql("SELECT count(*) FROM pg_class WHERE relname IN ('notes_extra', 'notes_extra_id_seq')"); got != "0" {
		t.Errorf("after the restore %s of v2's table and sequence are left", got)
	}
	if got := psql("SELECT string_agg(text, ',') FROM notes_note"); got != "before v2" {
		t.Errorf("after the restore the notes are %q, want the snapshot's", got)
	}
	if _, _, out, err := shipRevision(t, site, "v3"); err != nil {
		t.Fatalf("the migration v2 made runs again after the restore: %v\n%s", err, out)
	}
	page(t, site, "v3")
	if got := psql("SELECT count(*) FROM django_migrations WHERE app = 'notes' AND name = '0002_table'"); got != "1" {
		t.Errorf("0002_table is applied %s times", got)
	}
}
