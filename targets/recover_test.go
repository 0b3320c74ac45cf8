package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// upgradeHost is a fake host on which every step of the upgrade
// sequence succeeds: release r1 is live (unless live is ""), gunicorn
// runs under sysv init and the site answers its health request.
func upgradeHost(live string) *fakeHost {
	facts := "init=sysv\n"
	if live != "" {
		facts += "live=yes\ncurrent=releases/" + live + "\n"
	}
	return &fakeHost{uploads: true, rules: []fakeRule{
		{script: "facts", stdout: facts + "socket="},
		{script: "release-folder", stdout: "new\n"},
		{contains: "settings.STATIC_ROOT", stdout: "/srv/www/shop/releases/r2/static"},
		{script: "static-folder", stdout: "own"},
		{script: "ask-site", stdout: "status=200\nheader=\nbody=no"},
		{script: "gunicorn-trial", contains: "gunicorn-trial start", stdout: "/run/djship-trial.abc123"},
		{contains: "Asks an application server", stdout: "good=yes\nstatus=200\nheader=\nbody=no"},
		{script: "list-releases"},
		{}, // everything else succeeds and prints nothing
	}}
}

// upgradeDeploy is the upgrade of shop to release r2 on a fake host,
// holding the host's lock.
func upgradeDeploy(h *fakeHost) (*Deploy, *bytes.Buffer) {
	s := sites.Settings{Project: "shop", Root: "/srv/www", KeepReleases: 5, AppServer: "gunicorn", Python: "/usr/bin/python3",
		Health: sites.Health{Path: "/", Status: 200, Retries: 1, Revision: "none"}}
	s.App.User, s.App.Group, s.Web.Group = "shop", "shop", "www-data"
	s.Database.Engine, s.Database.Path = "sqlite", "db.sqlite3"
	s.Django.SourceFolder = "."
	var out bytes.Buffer
	d := NewDeploy(&sites.Site{}, &sites.Environment{Name: "test"}, s, h, remote.NewOutput(&out, &remote.Redactor{}))
	d.Action, d.Release, d.Revision = actionUpgrade, "r2", "abc123"
	d.Tarball = &release.Tarball{Path: "/tmp/shop-abc123.tar.gz"}
	d.lockHeld = "user=dev"
	return d, &out
}

// failingStep runs a step, then fails as if its last command had: the
// strictest place for a step to fail, with all its changes made.
type failingStep struct{ Step }

func (f failingStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if _, err := f.Step.Run(ctx, d); err != nil {
		return false, err
	}
	return false, errors.New("injected failure")
}

// Skip keeps the wrapped step's Skip: a step that does not apply is not
// run, so it cannot fail.
func (f failingStep) Skip(d *Deploy) bool {
	k, ok := f.Step.(Skipper)
	return ok && k.Skip(d)
}

func TestRecoverAfterEachFailingStep(t *testing.T) {
	steps := UpgradeSteps()
	index := func(name string) int {
		for i, s := range steps {
			if s.Name() == name {
				return i
			}
		}
		t.Fatalf("no step %q", name)
		return -1
	}
	built, switched := index("release folder"), index("switch")
	for i, s := range steps {
		if _, ok := s.(recordStep); ok {
			continue // it only warns: it never fails
		}
		if k, ok := s.(Skipper); ok && k.Skip(&Deploy{Settings: sites.Settings{AppServer: "gunicorn"}, mode: processRuntime{}}) {
			continue // uWSGI's only: the sequence skips it here
		}
		for _, live := range []string{"r1", ""} {
			name := s.Name() + " with r1 live"
			if live == "" {
				name = s.Name() + " on the first release"
			}
			t.Run(name, func(t *testing.T) {
				h := upgradeHost(live)
				d, out := upgradeDeploy(h)
				sequence := append([]Step{}, steps...)
				sequence[i] = failingStep{s}
				_, err := RunSteps(context.Background(), d, sequence)
				if err == nil {
					t.Fatal("the sequence did not fail")
				}
				before := len(h.ran)
				err = d.recover(context.Background(), err)
				if !strings.Contains(err.Error(), "injected failure") {
					t.Errorf("recover lost the cause: %v", err)
				}
				recovery := h.ran[before:]
				has := func(text string) bool {
					for _, c := range recovery {
						if strings.Contains(c, text) {
							return true
						}
					}
					return false
				}
				marked := has("\n' mark-release /srv/www/shop/releases/r2 failed")
				if marked != (i >= built) {
					t.Errorf("release r2 marked failed: %v, want %v (it is built from step %d on)", marked, i >= built, built)
				}
				if !has(`"action":"upgrade","release":"r2","revision":"abc123"`) || !has(`"result":"failed"`) {
					t.Errorf("deploy.log records no failed upgrade of r2: %q", recovery)
				}
				switchedBack := has("ln -sfn -- releases/r1 /srv/www/shop/current.djship-new")
				wantBack := i >= switched && live != ""
				if switchedBack != wantBack {
					t.Errorf("switched back to r1: %v, want %v", switchedBack, wantBack)
				}
				if wantBack && !strings.Contains(out.String(), "r1 is live again and answers") {
					t.Errorf("the output does not say r1 is live again:\n%s", out)
				}
				removed := has("rm -f -- /srv/www/shop/current /srv/www/shop/app.sock")
				if removed != (i >= switched && live == "") {
					t.Errorf("current removed: %v, want %v (only when the first release failed after the switch)", removed, i >= switched && live == "")
				}
				if i < switched {
					for _, c := range h.ran {
						if strings.Contains(c, "/srv/www/shop/current.djship-new") {
							t.Errorf("current changed though the failure came before the switch: %s", c)
						}
					}
				}
			})
		}
	}
}

func TestRecoverWithoutReleaseChangesNothing(t *testing.T) {
	h := upgradeHost("r1")
	d, _ := upgradeDeploy(h)
	d.Release = "" // the lock was refused or naming failed
	cause := errors.New("the lock is held")
	if err := d.recover(context.Background(), cause); err != cause {
		t.Errorf("recover changed the error: %v", err)
	}
	if len(h.ran) != 0 {
		t.Errorf("recover ran commands: %q", h.ran)
	}
}

func TestRecoverRecordsACancelledUpgrade(t *testing.T) {
	h := upgradeHost("r1")
	d, _ := upgradeDeploy(h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.recover(ctx, context.Canceled)
	if got := h.scripts("append-log"); len(got) != 1 || !strings.Contains(got[0], `"result":"cancelled"`) {
		t.Errorf("deploy.log entries: %q, want one cancelled", got)
	}
}

func TestRecoverPutsProcessesBackOnTheLiveRelease(t *testing.T) {
	h := upgradeHost("r1")
	d, _ := upgradeDeploy(h)
	d.Settings.Processes = map[string]string{"worker": "celery -A shop worker"}
	steps := UpgradeSteps()
	i := slices.IndexFunc(steps, func(s Step) bool { return s.Name() == "restart processes" })
	steps[i] = failingStep{steps[i]}
	_, err := RunSteps(context.Background(), d, steps[:i+1])
	if err == nil {
		t.Fatal("the sequence did not fail")
	}
	before := len(h.ran)
	d.recover(context.Background(), err)
	var back, restarted bool
	for _, c := range h.ran[before:] {
		back = back || strings.Contains(c, "ln -sfn -- releases/r1 /srv/www/shop/current.djship-new")
		restarted = restarted || back && strings.Contains(c, "/etc/init.d/djship-shop-worker restart")
	}
	if !back || !restarted {
		t.Errorf("recovery switched back %v, then restarted the worker %v: %q", back, restarted, h.ran[before:])
	}
}

// TestRecoverAfterALostConnection covers the host that cannot be reached
// again: recover runs nothing on it and the error says what is left and
// the commands to run once it answers, switched or not.
func TestRecoverAfterALostConnection(t *testing.T) {
	for _, c := range []struct {
		name     string
		switched bool
		want     []string
	}{
		{"before the switch", false, []string{"lock /srv/www/shop/deploy.lock is still held", "release r2 is not marked failed", "Nothing switched: r1 is still live", "The next run from this machine breaks the lock; from another machine, run mage unlock:test first"}},
		{"after the switch", true, []string{"The switch to r2 had happened", "mage ship:test brings it to one release with the others, or mage rollback:test -to=r1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := upgradeHost("r1")
			d, _ := upgradeDeploy(h)
			d.facts.live, d.progress.built, d.progress.switched = "r1", true, c.switched
			lost := fmt.Errorf("fake: %w while running migrate", remote.ErrConnectionLost)
			err := d.recover(context.Background(), lost)
			if !errors.Is(err, remote.ErrConnectionLost) {
				t.Fatalf("the cause is gone: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q:\n%v", w, err)
				}
			}
			if len(h.ran) != 0 {
				t.Errorf("recover ran commands on a host it could not reach: %q", h.ran)
			}
		})
	}
}
