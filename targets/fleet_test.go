package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// The fleet's order of work, tested on fake hosts that record every
// command in one journal: which host does what, and what comes before
// what. TestFleet (fleet_e2e_test.go) ships to real machines.

// Marks of the commands in the journal.
const (
	markCollect  = "collectstatic --noinput"
	markMigrate  = "migrate --noinput"
	markSnapshot = "pg-dump"
	markReady    = "gunicorn-trial start"
	markSwitch   = "current.djship-new"
	markHealth   = "' ask-site "
	markBuilt    = "' release-folder "
	markFailed   = "' mark-release /srv/www/shop/releases/r2 failed"
)

// fakeFleet is an upgrade of shop to r2 on fake hosts named after their
// roles (web1, web2, worker1, db1, lb1), at 10.0.0.11 and on.
func fakeFleet(t *testing.T, engine string, fl sites.Fleet, roles ...string) ([]*Deploy, map[string]*fakeHost, *journal) {
	t.Helper()
	j := &journal{}
	env := &sites.Environment{Name: "production"}
	var dbAddress string
	for i, r := range roles {
		if r == sites.RoleDB {
			dbAddress = fmt.Sprintf("10.0.0.%d", 11+i)
		}
	}
	hosts := map[string]*fakeHost{}
	var deploys []*Deploy
	count := map[string]int{}
	var out bytes.Buffer
	for i, r := range roles {
		count[r]++
		name := fmt.Sprintf("%s%d", r, count[r])
		h := upgradeHost("r1")
		h.name, h.journal = name, j
		hosts[name] = h
		d, _ := upgradeDeploy(h)
		d.Out = remote.NewOutput(&out, &remote.Redactor{})
		d.Roles = []string{r}
		d.Settings.Web.HTTPPort, d.Settings.URL, d.Settings.Web.ClientMaxBodySize, d.Settings.Instance = 80, "shop.example.com", "30m", "shop"
		d.Settings.Database = sites.Database{Engine: engine, Path: "db.sqlite3"}
		if engine == "postgres" {
			d.Settings.Database = sites.Database{Engine: engine, Name: "shop", User: "shop", Port: 5432, Host: dbAddress, PasswordSecret: "DATABASE_PASSWORD"}
			d.Secrets["DATABASE_PASSWORD"] = "pw"
		}
		d.Entry = sites.Host{Address: fmt.Sprintf("10.0.0.%d", 11+i), Roles: d.Roles, Settings: d.Settings}
		env.Hosts = append(env.Hosts, d.Entry)
		d.Env = env
		deploys = append(deploys, d)
	}
	env.Settings = deploys[0].Settings
	env.Settings.Fleet = fl
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
	})
	return deploys, hosts, j
}

// fails makes a fake host fail every command that contains text.
func fails(h *fakeHost, text string) {
	h.rules = append([]fakeRule{{contains: text, err: errors.New("failed on purpose")}}, h.rules...)
}

// upgradeFleet upgrades the fake fleet and returns each host's outcome,
// in the order of deploys.
func upgradeFleet(deploys []*Deploy) []hostOutcome {
	byHost := newFleet(deploys, 0).upgrade(context.Background(), processUpgrade())
	outcomes := make([]hostOutcome, len(deploys))
	for i, d := range deploys {
		outcomes[i] = byHost[d]
	}
	return outcomes
}

func TestFleetBuildsEverywhereMigratesOnceThenSwitches(t *testing.T) {
	deploys, _, j := fakeFleet(t, "postgres", sites.Fleet{}, "lb", "web", "web", "web", "worker", "db")
	for i, o := range upgradeFleet(deploys) {
		if o.err != nil {
			t.Fatalf("host %d: %v", i, o.err)
		}
	}
	checkFleetOrder(t, j)
}

// TestFleetOrderDoesNotFollowLabels gives every step of the upgrade a
// new display name: each host runs the same commands in the same order,
// and the phases keep their order across the hosts.
func TestFleetOrderDoesNotFollowLabels(t *testing.T) {
	roles := []string{"lb", "web", "web", "web", "worker", "db"}
	deploys, _, labelled := fakeFleet(t, "postgres", sites.Fleet{}, roles...)
	newFleet(deploys, 0).upgrade(context.Background(), processUpgrade())
	n := 0
	seq := processUpgrade().mapSteps(func(s Step) Step {
		n++
		return relabeled{s, fmt.Sprintf("step %d", n)}
	})
	deploys, _, renamed := fakeFleet(t, "postgres", sites.Fleet{}, roles...)
	for d, o := range newFleet(deploys, 0).upgrade(context.Background(), seq) {
		if o.err != nil {
			t.Fatalf("%s: %v", d.Host.Name(), o.err)
		}
	}
	checkFleetOrder(t, renamed)
	for _, h := range []string{"lb1", "web1", "web2", "web3", "worker1", "db1"} {
		if a, b := labelled.of(h), renamed.of(h); !slices.Equal(a, b) {
			t.Errorf("%s ran %d commands with the README's labels and %d with others:\n%s\n---\n%s", h, len(a), len(b), strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
	}
}

// relabeled is a step under another display name.
type relabeled struct {
	Step
	name string
}

func (r relabeled) Name() string { return r.name }

func (r relabeled) Skip(d *Deploy) bool {
	k, ok := r.Step.(Skipper)
	return ok && k.Skip(d)
}

// checkFleetOrder checks the journal of an upgrade of lb, web×3, worker
// and db: every application host built once and switched once, migrate
// ran once on the first web host after every build and the snapshot on
// the db host, every web host started its workers after migrate and
// before any switch, and each host did only its role's work.
func checkFleetOrder(t *testing.T, j *journal) {
	t.Helper()
	apps := []string{"web1", "web2", "web3", "worker1"}
	lastCollect := -1
	for _, h := range apps {
		if j.count(h, markCollect) != 1 || j.count(h, markSwitch) != 1 {
			t.Errorf("%s: %d collectstatic, %d switches; want one of each", h, j.count(h, markCollect), j.count(h, markSwitch))
		}
		lastCollect = max(lastCollect, j.last(h, markCollect))
	}
	for h, want := range map[string]int{"web1": 1, "web2": 0, "web3": 0, "worker1": 0, "db1": 0} {
		if got := j.count(h, markMigrate); got != want {
			t.Errorf("%s ran migrate %d times, want %d: once in all, on the first web host", h, got, want)
		}
	}
	for h, want := range map[string]int{"db1": 1, "web1": 0, "web2": 0} {
		if got := j.count(h, markSnapshot); got != want {
			t.Errorf("%s took %d snapshots, want %d: once in all, on the db host", h, got, want)
		}
	}
	migrate := j.index("web1", markMigrate, 0)
	if migrate < lastCollect || j.index("db1", markSnapshot, 0) > migrate {
		t.Errorf("migrate (line %d) ran before the last build finished (line %d) or before the snapshot", migrate, lastCollect)
	}
	firstSwitch := len(j.lines)
	for _, h := range apps {
		if i := j.index(h, markSwitch, 0); i >= 0 {
			firstSwitch = min(firstSwitch, i)
		}
	}
	for _, h := range []string{"web1", "web2", "web3"} {
		if r := j.last(h, markReady); r < migrate || r > firstSwitch {
			t.Errorf("%s started its new workers at line %d: after migrate (%d), before any switch (%d)", h, r, migrate, firstSwitch)
		}
	}
	for h, texts := range map[string][]string{"worker1": {markReady, markHealth}, "lb1": {markBuilt, markSwitch}, "db1": {markBuilt, markSwitch, markMigrate}} {
		for _, text := range texts {
			if n := j.count(h, text); n != 0 {
				t.Errorf("%s ran %q %d times: not its role's work", h, text, n)
			}
		}
	}
}

func TestFleetBuildFailureLeavesEveryHostOnTheOldRelease(t *testing.T) {
	deploys, hosts, j := fakeFleet(t, "postgres", sites.Fleet{}, "web", "web", "worker", "db")
	fails(hosts["web2"], markCollect)
	outcomes := upgradeFleet(deploys)
	for _, h := range []string{"web1", "web2", "worker1"} {
		if n := j.count(h, markSwitch); n != 0 {
			t.Errorf("%s switched %d times after web2 failed to build", h, n)
		}
		if j.count(h, markFailed) != 1 {
			t.Errorf("%s did not mark its release r2 failed", h)
		}
	}
	if n := j.count("web1", markMigrate); n != 0 {
		t.Errorf("migrate ran %d times though a host failed to build", n)
	}
	if err := outcomes[1].err; err == nil || !strings.Contains(err.Error(), "failed on purpose") {
		t.Errorf("web2's error: %v", err)
	}
	for _, i := range []int{0, 2} {
		if !errors.Is(outcomes[i].err, errOtherHost) || !strings.Contains(outcomes[i].err.Error(), "web2 failed") {
			t.Errorf("host %d's error should say web2 failed: %v", i, outcomes[i].err)
		}
	}
}

func TestFleetHealthFailureSwitchesEveryHostBack(t *testing.T) {
	deploys, hosts, j := fakeFleet(t, "postgres", sites.Fleet{}, "web", "web", "web", "db")
	hosts["web3"].rules = append([]fakeRule{{script: "ask-site", stdout: "status=500\nheader=\nbody=no"}}, hosts["web3"].rules...)
	outcomes := upgradeFleet(deploys)
	for i, h := range []string{"web1", "web2", "web3"} {
		if n := j.count(h, markSwitch); n != 2 {
			t.Errorf("%s switched %d times; want 2: to r2, and back to r1 when web3 failed its health check", h, n)
		}
		if back := j.last(h, markSwitch); !strings.Contains(j.lines[back], "releases/r1") {
			t.Errorf("%s's last switch was not back to r1: %.200s", h, j.lines[back])
		}
		if outcomes[i].err == nil {
			t.Errorf("%s reports success", h)
		}
	}
}

func TestFleetRollsInBatchesOutOfTheBalancer(t *testing.T) {
	deploys, _, j := fakeFleet(t, "postgres", sites.Fleet{Rolling: sites.Rolling{Batch: "1"}}, "lb", "web", "web", "worker", "db")
	for i, o := range upgradeFleet(deploys) {
		if o.err != nil {
			t.Fatalf("host %d: %v", i, o.err)
		}
	}
	web1, web2, worker := j.index("web1", markSwitch, 0), j.index("web2", markSwitch, 0), j.index("worker1", markSwitch, 0)
	if !(web1 < j.index("web1", markHealth, web1) && j.index("web1", markHealth, web1) < web2 && web2 < worker) {
		t.Errorf("not one batch at a time: web1 switched at %d, answered at %d, web2 switched at %d, the worker at %d", web1, j.index("web1", markHealth, web1), web2, worker)
	}
	// The balancer's configuration at each host's switch: that host
	// down, the other up.
	balancerAt := func(line int) string {
		for i := line; i >= 0; i-- {
			if strings.HasPrefix(j.lines[i], "lb1: upload /etc/nginx/sites-available/shop-lb.conf") {
				return j.lines[i]
			}
		}
		return ""
	}
	for _, c := range []struct {
		at         int
		down, up   string
		switchName string
	}{{web1, "10.0.0.12:80", "10.0.0.13:80", "web1"}, {web2, "10.0.0.13:80", "10.0.0.12:80", "web2"}} {
		conf := balancerAt(c.at)
		if !strings.Contains(conf, "server "+c.down+" max_fails=1 fail_timeout=2s down;") || !strings.Contains(conf, "server "+c.up+" max_fails=1 fail_timeout=2s;") {
			t.Errorf("when %s switched, the balancer was:\n%s", c.switchName, conf)
		}
	}
	if conf := balancerAt(len(j.lines) - 1); strings.Contains(conf, " down;") {
		t.Errorf("a host is still out of the balancer at the end:\n%s", conf)
	}
}

func TestFleetMigrateHostAndOwnDatabases(t *testing.T) {
	deploys, _, j := fakeFleet(t, "postgres", sites.Fleet{MigrateHost: "10.0.0.12"}, "web", "web", "web", "db")
	upgradeFleet(deploys)
	for h, want := range map[string]int{"web1": 0, "web2": 1, "web3": 0} {
		if got := j.count(h, markMigrate); got != want {
			t.Errorf("%s ran migrate %d times, want %d (fleet.migrate_host 10.0.0.12 is web2)", h, got, want)
		}
	}
	// sqlite: each host has a database of its own, so each migrates its own.
	deploys, _, j = fakeFleet(t, "sqlite", sites.Fleet{}, "web", "web")
	upgradeFleet(deploys)
	for _, h := range []string{"web1", "web2"} {
		if got := j.count(h, markMigrate); got != 1 {
			t.Errorf("%s ran migrate %d times; with sqlite every host migrates its own database", h, got)
		}
	}
}

func TestFleetUploadAndBuildLimits(t *testing.T) {
	for _, c := range []struct {
		fleet          sites.Fleet
		uploads, build int
	}{
		{sites.Fleet{Uploads: 1}, 1, 0}, // the builds overlap as the uploads let them
		{sites.Fleet{Uploads: 2, Builds: 1}, 2, 1},
		{sites.Fleet{}, 4, 4},
	} {
		deploys, _, _ := fakeFleet(t, "postgres", c.fleet, "web", "web", "web", "web", "db")
		upload, build := &slowStep{name: "upload"}, &slowStep{name: "unpack"}
		seq := replaced(t, replaced(t, processUpgrade(), "upload", upload), "unpack", build)
		newFleet(deploys, 0).upgrade(context.Background(), seq)
		if upload.most != c.uploads || (c.build != 0 && build.most != c.build) || upload.done != 4 || build.done != 4 {
			t.Errorf("%+v: %d uploads and %d builds at once at most (%d and %d in all); want %d and %d", c.fleet, upload.most, build.most, upload.done, build.done, c.uploads, c.build)
		}
	}
}

// slowStep is a step that takes a while and counts how many hosts run it
// at once.
type slowStep struct {
	name            string
	mu              sync.Mutex
	now, most, done int
}

func (s *slowStep) Name() string { return s.name }

func (s *slowStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	s.mu.Unlock()
	time.Sleep(80 * time.Millisecond)
	s.mu.Lock()
	s.now--
	s.done++
	s.mu.Unlock()
	return true, nil
}

func TestHBAAddress(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"10.0.0.11", "10.0.0.11/32", false},
		{"2001:db8::11", "2001:db8::11/128", false},
		{"web1.internal", "web1.internal", false},
		{"all", "", true},
		{"SameNet", "", true},
		{"samehost", "", true},
	}
	for _, tt := range tests {
		got, err := hbaAddress(tt.in)
		if got != tt.want || (err != nil) != tt.bad {
			t.Errorf("hbaAddress(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestAddedStepsJoinTheirPhase(t *testing.T) {
	withAdded(t, func() {
		AddStepBefore("migrate", ShellStep("extension", "true"))
		AddStepAfter("migrate", ManageStep("cache table", "createcachetable"))
		AddStepAfter("collectstatic", ShellStep("compress", "true"))
		AddStepBefore("switch", ShellStep("warm", "true"))
	})
	seq, err := withInsertions(processUpgrade(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		phase phase
		want  string
	}{
		{phaseFacts, "facts"},
		{phaseUpload, "upload"},
		{phaseBuild, "release folder, unpack, virtualenv, shared folders, collectstatic, compress, permissions, deploy checks"},
		{phaseSnapshot, "database snapshot"},
		{phaseMigrate, "extension, migrate, cache table"},
		{phaseReady, "start new workers, warm"},
		{phaseSwitch, "switch, reload, health check, restart processes"},
		{phaseFinish, "stop old workers, record, prune"},
	} {
		if got := stepNames(seq.of(c.phase)); got != c.want {
			t.Errorf("%s phase: %s; want %s", c.phase, got, c.want)
		}
	}
}

func TestFleetRollbackNeedsOneTarget(t *testing.T) {
	deploys, _, j := fakeFleet(t, "postgres", sites.Fleet{}, "web", "web", "db")
	f := newFleet(deploys, 0)
	deploys[0].Release, deploys[1].Release = "r1", "r0"
	f.agree(f.hosts((*Deploy).runsSite))
	if f.ok() || !strings.Contains(f.failed.Error(), "different releases (web1 r1, web2 r0)") {
		t.Errorf("hosts going back to r1 and r0: %v", f.failed)
	}
	if n := j.count("web1", markSwitch) + j.count("web2", markSwitch); n != 0 {
		t.Errorf("%d switches", n)
	}
	f = newFleet(deploys, 0)
	deploys[1].Release = "r1"
	if f.agree(f.hosts((*Deploy).runsSite)); !f.ok() {
		t.Errorf("hosts that agree: %v", f.failed)
	}
}
