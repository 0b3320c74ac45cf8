package targets

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// localDeploy is the work of an upgrade on this machine for a project
// under root, without a site file or servers: enough for the lock, the
// release name and the release folder.
func localDeploy(t *testing.T, root string) (*Deploy, *bytes.Buffer) {
	t.Helper()
	testenv.NeedRoot(t)
	var buf bytes.Buffer
	out := remote.NewOutput(&buf, &remote.Redactor{})
	s := sites.Settings{Root: root, Project: "races"}
	d := NewDeploy(&sites.Site{}, &sites.Environment{Name: "test"}, s, remote.NewLocal(out), out)
	d.Action, d.Revision = "upgrade", "r"
	return d, &buf
}

// logLine is a deploy.log line as djship writes it.
func logLine(action, release, result string) string {
	line, _ := json.Marshal(logEntry{Time: "2024-05-01T10:00:00Z", User: "alice", Action: action, Release: release, Revision: "r", Result: result})
	return string(line) + "\n"
}

// TestReleaseNameNeverReused: the name of a release is new on every host,
// against the folders there and every name the deploy log ever recorded,
// whatever the result.
func TestReleaseNameNeverReused(t *testing.T) {
	stamp := func(d time.Duration) string { return "r-" + time.Now().Add(d).UTC().Format("20060102T150405Z") }
	cases := []struct {
		name    string
		folders [2][]string // release folders on each of two hosts
		logs    [2]string   // deploy.log of each host
		want    string      // the exact name, or "" for any new one
	}{
		{name: "first release of the revision", logs: [2]string{logLine("deploy", "q", "ok"), ""}, want: "r"},
		{name: "a folder of that name on the second host", folders: [2][]string{nil, {"r"}}},
		{name: "a failed release pruned since: the log remembers it", folders: [2][]string{{"v2"}, nil},
			logs: [2]string{logLine("deploy", "r", "failed") + logLine("deploy", "v2", "ok"), ""}},
		{name: "a cancelled run that made no folder", logs: [2]string{"", logLine("deploy", "r", "cancelled")}},
		{name: "a rollback to a release pruned since", logs: [2]string{logLine("deploy", "r", "ok") + logLine("deploy", "v2", "ok") + logLine("rollback", "r", "ok"), ""}},
		{name: "the timestamped names are taken too",
			folders: [2][]string{{"r", stamp(-time.Second), stamp(0), stamp(time.Second), stamp(2 * time.Second)}, {stamp(3 * time.Second), stamp(4 * time.Second), stamp(5 * time.Second)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var deploys []*Deploy
			used := map[string]bool{}
			for i := range 2 {
				d, _ := localDeploy(t, t.TempDir())
				for _, f := range c.folders[i] {
					used[f] = true
					if err := os.MkdirAll(filepath.Join(d.Paths.Releases, f), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				os.MkdirAll(d.Paths.Releases, 0o755)
				if c.logs[i] != "" {
					if err := os.WriteFile(d.Paths.Log, []byte(c.logs[i]), 0o640); err != nil {
						t.Fatal(err)
					}
					entries, _ := d.readLog(context.Background())
					for _, e := range entries {
						used[e.Release] = true
					}
				}
				deploys = append(deploys, d)
			}
			got, err := releaseName(context.Background(), deploys, "r")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want != "" && got != c.want:
				t.Errorf("name %q, want %q", got, c.want)
			case used[got]:
				t.Errorf("name %q was used before on a host (used: %v)", got, used)
			case !strings.HasPrefix(got, "r"):
				t.Errorf("name %q does not start with the revision", got)
			}
		})
	}
}

// TestLockFailures: only an existing lock is held by someone; any other
// failure to take it says what failed, with mkdir's own words, and what
// to do, at once, without waiting for a lock that nobody holds.
func TestLockFailures(t *testing.T) {
	testenv.NeedRoot(t)
	cases := []struct {
		name   string
		setup  func(t *testing.T, base string)
		wait   time.Duration
		want   []string // in the error ("" error when nil)
		refuse string   // never in the error
	}{
		{name: "free", setup: func(t *testing.T, base string) { os.MkdirAll(base, 0o755) }},
		{name: "held by another run",
			setup: func(t *testing.T, base string) {
				os.MkdirAll(filepath.Join(base, "deploy.lock"), 0o700)
				os.WriteFile(filepath.Join(base, "deploy.lock", "info"), []byte("user=alice host=ci-runner-7 pid=4242 time="+time.Now().UTC().Format(time.RFC3339)+" target=upgrade:test revision=abc\n"), 0o600)
			},
			want: []string{"is held by upgrade:test of alice on ci-runner-7 (pid 4242", "mage unlock:test"}},
		{name: "held, without info",
			setup: func(t *testing.T, base string) { os.MkdirAll(filepath.Join(base, "deploy.lock"), 0o700) },
			want:  []string{"is held by an unknown run (the lock has no info)"}},
		{name: "never provisioned", wait: 20 * time.Second,
			setup:  func(t *testing.T, base string) {},
			want:   []string{"No such file or directory", "does not exist", "run mage provision:test first"},
			refuse: "held by"},
		{name: "project folder is a file",
			setup:  func(t *testing.T, base string) { os.WriteFile(base, nil, 0o644) },
			want:   []string{"Not a directory", "is not a folder"},
			refuse: "held by"},
		{name: "lock is a file",
			setup: func(t *testing.T, base string) {
				os.MkdirAll(base, 0o755)
				os.WriteFile(filepath.Join(base, "deploy.lock"), nil, 0o644)
			},
			want:   []string{"File exists", "not a folder"},
			refuse: "held by"},
		{name: "read-only file system",
			setup: func(t *testing.T, base string) {
				os.MkdirAll(base, 0o755)
				if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", base).CombinedOutput(); err != nil {
					testenv.Missing(t, "tmpfs mounts", fmt.Sprintf("%v: %s", err, out))
				}
				t.Cleanup(func() { exec.Command("umount", "-l", base).Run() })
			},
			want: []string{"Read-only file system"}, refuse: "held by"},
		{name: "immutable project folder",
			setup: func(t *testing.T, base string) {
				os.MkdirAll(base, 0o755)
				if out, err := exec.Command("chattr", "+i", base).CombinedOutput(); err != nil {
					testenv.Missing(t, "chattr +i", fmt.Sprintf("%v: %s", err, out))
				}
				t.Cleanup(func() { exec.Command("chattr", "-i", base).Run() })
			},
			want: []string{"Operation not permitted"}, refuse: "held by"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := localDeploy(t, t.TempDir())
			d.LockWait = c.wait
			c.setup(t, d.Paths.Base)
			start := time.Now()
			_, err := lockStep{}.Run(context.Background(), d)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v", took.Round(time.Second))
			}
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				info, _ := os.ReadFile(filepath.Join(d.Paths.Lock, "info"))
				if d.lockHeld == "" || strings.TrimSpace(string(info)) != d.lockHeld || !strings.Contains(d.lockHeld, "target=upgrade:test") {
					t.Errorf("lock info %q, this run's %q", info, d.lockHeld)
				}
				d.unlock(context.Background())
				if _, err := os.Stat(d.Paths.Lock); err == nil {
					t.Error("unlock left the lock")
				}
				return
			}
			if err == nil {
				t.Fatal("took the lock")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q:\n%v", w, err)
				}
			}
			if c.refuse != "" && strings.Contains(err.Error(), c.refuse) {
				t.Errorf("the error says %q:\n%v", c.refuse, err)
			}
			if !strings.Contains(err.Error(), d.Paths.Lock) {
				t.Errorf("the error does not name %s:\n%v", d.Paths.Lock, err)
			}
			if d.lockHeld != "" {
				t.Error("a failed lock counts as held by this run")
			}
		})
	}
}

// TestFailedRunMarksOnlyItsOwnRelease: recovering from a failed upgrade
// marks failed the release folder this run built, never one it found:
// the live release, another run's, or one of the same name it refused.
func TestFailedRunMarksOnlyItsOwnRelease(t *testing.T) {
	release := func(t *testing.T, d *Deploy, name, state string) {
		dir := filepath.Join(d.Paths.Releases, name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, ".djship-state"), []byte(state+"\n"), 0o644)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, d *Deploy)
		steps []Step // run until the first failure; then the failure below
		want  string // state of releases/r afterwards
	}{
		{name: "refused: the release is live",
			setup: func(t *testing.T, d *Deploy) {
				release(t, d, "r", "complete")
				os.Symlink("releases/r", d.Paths.Current)
			},
			steps: []Step{releaseDirStep{}}, want: "complete"},
		{name: "refused: a folder of that name exists",
			setup: func(t *testing.T, d *Deploy) { release(t, d, "r", "complete") },
			steps: []Step{releaseDirStep{}}, want: "complete"},
		{name: "failed before the folder was made",
			setup: func(t *testing.T, d *Deploy) { release(t, d, "r", "complete") },
			want:  "complete"},
		{name: "built, then failed",
			setup: func(t *testing.T, d *Deploy) { os.MkdirAll(d.Paths.Releases, 0o755) },
			steps: []Step{releaseDirStep{}}, want: "failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := localDeploy(t, t.TempDir())
			d.Release = "r"
			c.setup(t, d)
			_, err := RunSteps(context.Background(), d, c.steps)
			if err == nil {
				err = errors.New("local: step \"unpack\": the next step failed")
			}
			d.recover(context.Background(), err)
			state, _ := os.ReadFile(filepath.Join(d.Paths.Releases, "r", ".djship-state"))
			if got := strings.TrimSpace(string(state)); got != c.want {
				t.Errorf("releases/r is %q after %v; want %q", got, err, c.want)
			}
		})
	}
}

// deployLog reads the site's deploy.log on this machine.
func deployLog(t *testing.T, site *sites.Site) []logEntry {
	t.Helper()
	f, err := os.Open(NewPaths(site.Settings).Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []logEntry
	s := bufio.NewScanner(f)
	for s.Scan() {
		var e logEntry
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			t.Fatalf("deploy.log: %q: %v", s.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries
}

// TestConcurrentUpgradesOfOneRevision ships one revision twice at once,
// the second waiting for the lock: both ship, under two names chosen
// under the lock, and the live release stays complete and answers.
func TestConcurrentUpgradesOfOneRevision(t *testing.T) {
	site, _ := liveExample(t, 41)
	a, err := buildRelease(t, site, map[string]string{"REVISION": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var outs [2]bytes.Buffer
	var errs [2]error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Upgrade(context.Background(), site, "test", a.Path, Options{Out: &outs[i], Secrets: shipSecrets, LockWait: 5 * time.Minute})
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("upgrade %d: %v\n%s", i+1, errs[i], outs[i].String())
		}
	}
	names := map[string]string{}
	for _, e := range deployLog(t, site) {
		if e.Action != actionUpgrade {
			continue
		}
		if r, ok := names[e.Release]; ok {
			t.Errorf("deploy.log has two deploys named %s (%s, then %s)", e.Release, r, e.Result)
		}
		names[e.Release] = e.Result
	}
	p := NewPaths(site.Settings)
	live := filepath.Base(sh(t, `readlink "$1"`, p.Current))
	states := releasesOnHost(t, site)
	if states[live] != "complete" {
		t.Errorf("the live release %s is %q (releases: %v)", live, states[live], states)
	}
	v2 := 0
	for name, result := range names {
		if strings.HasPrefix(name, "v2") {
			v2++
			if result != "ok" || states[name] != "complete" {
				t.Errorf("release %s: logged %s, folder %q", name, result, states[name])
			}
		}
	}
	if v2 != 2 {
		t.Errorf("deploys of v2 in deploy.log: %v", names)
	}
	t.Logf("deploys: %v; live: %s", names, live)
	page(t, site, "v2")
}

// dbState is what a test compares of the example database: the notes and
// whether v2's table exists.
func dbState(t *testing.T, site *sites.Site) string {
	t.Helper()
	if site.Settings.Database.Engine == "sqlite" {
		db := filepath.Join(NewPaths(site.Settings).DB, "db.sqlite3")
		return sh(t, `sqlite3 "$1" "SELECT text FROM notes_note ORDER BY id"; sqlite3 "$1" ".tables notes_extra"`, db)
	}
	return sh(t, `runuser -u postgres -- psql -XAtqd "$1" -c "SELECT text FROM notes_note ORDER BY id" -c "SELECT coalesce(to_regclass('notes_extra')::text, '')"`, site.Settings.Project)
}

// dbExec runs SQL in the example database.
func dbExec(t *testing.T, site *sites.Site, sql string) {
	t.Helper()
	if site.Settings.Database.Engine == "sqlite" {
		sh(t, `sqlite3 "$1" "$2"`, filepath.Join(NewPaths(site.Settings).DB, "db.sqlite3"), sql)
		return
	}
	sh(t, `runuser -u postgres -- psql -XqAd "$1" -v ON_ERROR_STOP=1 -c "$2"`, site.Settings.Project, sql)
}

// TestFailedRollbackRestoresDatabaseAgain rolls back across a migration
// with the database restore, and the target release fails its health
// check after the restore: the code switches back and so does the
// database, from the before-rollback snapshot. When that restore fails
// too, the error says where the snapshot is and how to restore it.
func TestFailedRollbackRestoresDatabaseAgain(t *testing.T) {
	needExample(t)
	cases := []shipCase{
		{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"},
		{web: "nginx", app: "uwsgi", db: "postgres", connection: "local"},
	}
	for i, c := range cases {
		t.Run(c.db, func(t *testing.T) {
			if c.db == "postgres" {
				testenv.Command(t, "pg_dump", "postgresql-client")
				testenv.Command(t, "pg_ctlcluster", "postgresql")
			}
			exec.Command("service", "apache2", "stop").Run()
			site, src := exampleSite(t, c, 42+i, nil)
			if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
				t.Fatal(err)
			}
			dbExec(t, site, "INSERT INTO notes_note (text, created) VALUES ('before v2', CURRENT_TIMESTAMP)")
			// v2 adds a table, and a file only v2 serves.
			os.WriteFile(filepath.Join(src, "notes", "migrations", "0002_table.py"), []byte("from django.db import migrations\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunSQL('CREATE TABLE notes_extra (id integer)', 'DROP TABLE notes_extra')]\n"), 0o644)
			os.WriteFile(filepath.Join(src, "notes", "static", "notes", "v2.css"), []byte("body {}\n"), 0o644)
			if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
				t.Fatal(err)
			}
			dbExec(t, site, "INSERT INTO notes_note (text, created) VALUES ('after v2', CURRENT_TIMESTAMP)")
			before := dbState(t, site)
			if !strings.Contains(before, "after v2") || !strings.Contains(before, "notes_extra") {
				t.Fatalf("the database before the rollback:\n%s", before)
			}
			// The rollback's health check asks for what v1 does not serve.
			h := &site.Environments["test"].Hosts[0].Settings.Health
			h.Path, h.Retries = "/static/notes/v2.css", 3
			p := NewPaths(site.Settings)

			var out bytes.Buffer
			_, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &out, Secrets: shipSecrets}, RestoreDB: true})
			if err == nil {
				t.Fatalf("the rollback to a release that fails its health check succeeded:\n%s", out.String())
			}
			t.Logf("the failed rollback: %v", err)
			kept, _ := filepath.Glob(filepath.Join(p.Snapshots, "before-rollback-*"))
			if len(kept) != 1 {
				t.Fatalf("before-rollback snapshots: %v", kept)
			}
			back := "the database is back as it was before the rollback, restored from " + kept[0]
			for _, w := range []string{`step "health check"`, back} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q:\n%v", w, err)
				}
			}
			if !strings.Contains(out.String(), back) {
				t.Errorf("the output lacks %q:\n%s", back, out.String())
			}
			if live := sh(t, `readlink "$1"`, p.Current); live != "releases/v2" {
				t.Errorf("current -> %s", live)
			}
			if after := dbState(t, site); after != before {
				t.Errorf("after the failed rollback the database is\n%s\nwant as before it:\n%s", after, before)
			}
			page(t, site, "v2")
			if c.db != "sqlite" {
				return
			}

			// Again, with the database locked once the target's snapshot is in:
			// the restore of the before-rollback snapshot fails; the error says
			// where it is and how to restore it by hand.
			time.Sleep(time.Second) // a new before-rollback name
			db := filepath.Join(p.DB, "db.sqlite3")
			watch := &watchWriter{want: "the database as it was is kept in", seen: make(chan struct{})}
			type holder struct {
				cmd   *exec.Cmd
				stdin io.Closer
			}
			locked := make(chan holder, 1)
			go func() {
				<-watch.seen
				locker := exec.Command("sqlite3", db)
				stdin, _ := locker.StdinPipe()
				stdout, _ := locker.StdoutPipe()
				locker.Start()
				io.WriteString(stdin, ".timeout 5000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n")
				line, _ := bufio.NewReader(stdout).ReadString('\n')
				if strings.TrimSpace(line) != "locked" {
					t.Errorf("locking the database: %q", line)
				}
				locked <- holder{locker, stdin} // stdin stays open until the rollback ends
			}()
			_, err = Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: watch, Secrets: shipSecrets}, RestoreDB: true})
			var locker holder
			select {
			case locker = <-locked:
			case <-time.After(10 * time.Second):
				t.Fatalf("the rollback never restored the target's snapshot:\n%s", watch.buf.String())
			}
			locker.stdin.Close()
			locker.cmd.Wait()
			if err == nil {
				t.Fatal("the second rollback succeeded")
			}
			msg := err.Error()
			t.Logf("the failed rollback, the database locked: %v", err)
			_, command, ok := strings.Cut(msg, "restore it by hand with:\n    ")
			command, _, _ = strings.Cut(command, "\n")
			var newest string
			all, _ := filepath.Glob(filepath.Join(p.Snapshots, "before-rollback-*"))
			for _, k := range all {
				if k != kept[0] {
					newest = k
				}
			}
			if !ok || newest == "" || !strings.Contains(msg, "could not restore the database as it was before the rollback") || !strings.Contains(msg, newest+" on local") || !strings.Contains(command, newest) {
				t.Fatalf("the error does not say where the snapshot (%s) is and how to restore it:\n%s", newest, msg)
			}
			if !strings.Contains(watch.buf.String(), newest) {
				t.Errorf("the output does not name %s:\n%s", newest, watch.buf.String())
			}
			if after := dbState(t, site); after == before {
				t.Fatal("the database is as before though the restore failed")
			}
			sh(t, command)
			if after := dbState(t, site); after != before {
				t.Errorf("after the restore by hand the database is\n%s\nwant\n%s", after, before)
			}
			page(t, site, "v2")
		})
	}
}
