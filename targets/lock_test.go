package targets

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestLockAnswers(t *testing.T) {
	holder := "user=alice host=ci-7 pid=4242 time=2026-12-01T10:00:00Z target=upgrade:test revision=abc"
	for _, c := range []struct {
		name, answer string
		held         bool
		fail         []string // what the error says
	}{
		{name: "taken", answer: "taken", held: true},
		{name: "held by another run", answer: "held\n" + holder,
			fail: []string{"is held by upgrade:test of alice on ci-7 (pid 4242", "may be stale: taken", "DJSHIP_LOCK_WAIT=5m", "mage unlock:test"}},
		{name: "held without info", answer: "held", fail: []string{"an unknown run (the lock has no info)"}},
		{name: "never provisioned", answer: "failed missing\nmkdir: cannot create directory '/srv/www/shop/deploy.lock': No such file or directory",
			fail: []string{"No such file or directory", "the host was never provisioned for shop", "mage provision:test first"}},
		{name: "base is a file", answer: "failed notdir\nmkdir: Not a directory", fail: []string{"/srv/www/shop is not a folder", "mage provision:test"}},
		{name: "lock is a file", answer: "failed notlock\nmkdir: File exists", fail: []string{"the lock is there but not a folder", "remove it"}},
		{name: "info not written", answer: "failed info\nNo space left on device", fail: []string{"writing its info failed", "No space left on device", "free space"}},
		{name: "read-only file system", answer: "failed mkdir\nmkdir: Read-only file system", fail: []string{"Read-only file system", "lsattr -d"}},
		{name: "an answer no lock script gives", answer: "maybe", fail: []string{`unexpected answer "maybe"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHost{rules: []fakeRule{{script: "lock", stdout: c.answer}}}
			d, _ := fakeDeploy(h, 5)
			d.Action, d.Revision = actionUpgrade, "abc"
			_, err := lockStep{}.Run(context.Background(), d)
			if c.held {
				if err != nil || d.lockHeld == "" {
					t.Fatalf("lock not held: %v", err)
				}
				if !strings.Contains(h.ran[0], "target=upgrade:test revision=abc") {
					t.Errorf("the lock's info does not name the run: %s", h.ran[0])
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if d.lockHeld != "" {
				t.Error("a refused lock counts as held")
			}
			for _, want := range c.fail {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}

func TestLockTakenOnceAndReleasedOnce(t *testing.T) {
	h := &fakeHost{rules: []fakeRule{{script: "lock", stdout: "taken"}, {script: "unlock"}}}
	d, _ := fakeDeploy(h, 5)
	d.Action = actionUpgrade
	for range 2 {
		if _, err := (lockStep{}).Run(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	info := d.lockHeld
	d.unlock(context.Background())
	d.unlock(context.Background())
	if n := len(h.scripts("lock")); n != 1 {
		t.Errorf("the lock was taken %d times", n)
	}
	unlocks := h.scripts("unlock")
	if len(unlocks) != 1 {
		t.Fatalf("unlock ran %d times", len(unlocks))
	}
	// unlock removes the lock only if it still holds this run's info.
	if !strings.Contains(unlocks[0], "/srv/www/shop/deploy.lock '"+info+"'") {
		t.Errorf("unlock does not check the run's info: %s", unlocks[0])
	}
}

func TestLockAllTakesEveryHostOrNone(t *testing.T) {
	free := &fakeHost{rules: []fakeRule{{script: "lock", stdout: "taken"}, {script: "unlock"}}}
	busy := &fakeHost{rules: []fakeRule{{script: "lock", stdout: "held\nuser=bob host=laptop pid=1 time=2026-12-01T10:00:00Z target=upgrade:test revision=x"}}}
	a, _ := fakeDeploy(free, 5)
	b, _ := fakeDeploy(busy, 5)
	err := lockAll(context.Background(), []*Deploy{a, b})
	if err == nil || !strings.Contains(err.Error(), "the lock could not be taken on 1 of 2 hosts, nothing changed on any host") || !strings.Contains(err.Error(), "bob") {
		t.Fatalf("error: %v", err)
	}
	if a.lockHeld != "" || len(free.scripts("unlock")) != 1 {
		t.Errorf("the lock taken on the free host was not released: %q", free.ran)
	}
}

func TestStatusOfAHost(t *testing.T) {
	h := &fakeHost{rules: []fakeRule{
		{script: "read-file", contains: "deploy.log", stdout: logLines("upgrade r1 ok", "upgrade r2 ok r1", "upgrade r3 failed r2")},
		{script: "count-complete", stdout: "2"},
		{contains: "gunicorn-shop status", err: errExit},
		{contains: "service nginx status"},
		{script: "read-file", contains: "deploy.lock/info", stdout: "user=carol host=ci pid=7 time=2026-12-01T10:00:00Z target=upgrade:test revision=r3"},
		{script: "ask-site", stdout: "status=502\nheader=\nbody=no"},
	}}
	d, _ := fakeDeploy(h, 5)
	d.Settings.AppServer, d.Settings.Webserver, d.Settings.Health.Status = "gunicorn", "nginx", 200
	d.facts = hostFacts{init: "sysv", live: "r2"}
	s := d.status(context.Background())
	want := HostStatus{Host: "fake", Live: "r2", Revision: "r2", DeployedBy: "dev", DeployedAt: "2026-12-01T10:00:00Z", Previous: "r1", Kept: 2,
		App: "stopped", Web: "running", Processes: "-", Lock: s.Lock, Health: "failing: status 502, want 200"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("status\n got %+v\nwant %+v", s, want)
	}
	if !strings.HasPrefix(s.Lock, "held: upgrade:test of carol on ci") {
		t.Errorf("lock: %s", s.Lock)
	}
	h.rules = append([]fakeRule{{contains: "djship-shop-beat status", err: errExit}, {contains: "djship-shop-worker status"}}, h.rules...)
	d.Settings.Processes = map[string]string{"worker": "celery -A shop worker", "beat": "celery -A shop beat"}
	if got := d.status(context.Background()).Processes; got != "beat stopped, worker running" {
		t.Errorf("processes: %q", got)
	}
}

// errExit is how a fake command fails.
var errExit = errors.New("exit status 3")

func TestStatusMarksHostsApart(t *testing.T) {
	for _, c := range []struct {
		live    []string
		serving []int    // the rows in the balancer; all when nil
		want    []string // the LIVE column afterwards
		says    string
	}{
		{live: []string{"v2", "v2", "v2"}, want: []string{"v2", "v2", "v2"}},
		{live: []string{"v2", "v3", "v2"}, want: []string{"v2", "v3 (apart)", "v2"}, says: "h1 runs v3, the others v2"},
		{live: []string{"v1", "v2", "v2", "-"}, want: []string{"v1 (apart)", "v2", "v2", "- (apart)"}, says: "h0 runs v1, h3 runs -, the others v2"},
		// Two hosts, one held out of the balancer: the other decides.
		{live: []string{"v3", "v4"}, serving: []int{0}, want: []string{"v3", "v4 (apart)"}, says: "h1 runs v4, the others v3"},
		{live: []string{"v4", "v3"}, serving: []int{1}, want: []string{"v4 (apart)", "v3"}, says: "h0 runs v4, the others v3"},
	} {
		statuses := make([]HostStatus, len(c.live))
		var apps []int
		for i, l := range c.live {
			statuses[i] = HostStatus{Host: fmt.Sprintf("h%d", i), Live: l}
			apps = append(apps, i)
		}
		serving := c.serving
		if serving == nil {
			serving = apps
		}
		says := markApart(statuses, apps, serving)
		for i, s := range statuses {
			if s.Live != c.want[i] {
				t.Errorf("%v: row %d shows %q, want %q", c.live, i, s.Live, c.want[i])
			}
		}
		if says != c.says {
			t.Errorf("%v: says %q, want %q", c.live, says, c.says)
		}
	}
}
