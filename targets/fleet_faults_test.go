package targets

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// powerCut is a step that cuts the power of one machine of the fleet
// when it runs on that host; on the other hosts it does nothing.
type powerCut struct {
	t       *testing.T
	machine *testenv.Machine
}

func (powerCut) Name() string { return "power cut" }

// The controller a test kills is this test binary run again as
// TestKilledControllerHelper, with what to ship in its environment.
const (
	controllerSite    = "DJSHIP_TEST_CONTROLLER_SITE"
	controllerTarball = "DJSHIP_TEST_CONTROLLER_TARBALL"
	controllerHoldOn  = "DJSHIP_TEST_CONTROLLER_HOLD_ON" // a host's address, or * for every host
	controllerAtOnce  = "DJSHIP_TEST_CONTROLLER_AT_ONCE"
)

// holdAfterSwitch is a step that, on the hosts it is told, says so on
// standard output and waits for the process to be killed.
type holdAfterSwitch struct{ on string }

func (holdAfterSwitch) Name() string { return "hold after the switch" }

func (s holdAfterSwitch) Run(ctx context.Context, d *Deploy) (bool, error) {
	if s.on != "*" && !d.Entry.Matches(s.on) {
		return false, nil
	}
	fmt.Printf("HELD %s\n", d.Entry.Address)
	<-ctx.Done()
	return false, ctx.Err()
}

// TestKilledControllerHelper is the controller killController kills:
// with controllerSite set it ships and holds after the switch; otherwise
// it does nothing.
func TestKilledControllerHelper(t *testing.T) {
	file := os.Getenv(controllerSite)
	if file == "" {
		return
	}
	site, err := sites.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(controllerAtOnce) != "" {
		eachHost(site.Environments["test"], func(s *sites.Settings) { s.Fleet.Rolling = sites.Rolling{} })
	}
	addStepFor(site.Settings.Project, "switch", true, holdAfterSwitch{on: os.Getenv(controllerHoldOn)})
	_, err = Ship(context.Background(), site, "test", os.Getenv(controllerTarball), Options{Out: os.Stderr, Secrets: shipSecrets})
	t.Fatalf("the ship ended (%v) before it was killed", err)
}

// killController ships revision in another process, holding after the
// switch on the host at holdOn (or on every host for *), switching every
// host at once when atOnce, and kills that process with SIGKILL once
// holds hosts hold. It returns what the process printed.
func killController(t *testing.T, site *sites.Site, revision, holdOn string, atOnce bool, holds int) string {
	t.Helper()
	a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledControllerHelper$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), controllerSite+"="+site.File, controllerTarball+"="+a.Path, controllerHoldOn+"="+holdOn)
	if atOnce {
		cmd.Env = append(cmd.Env, controllerAtOnce+"=1")
	}
	var said bytes.Buffer
	cmd.Stderr = &said
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	held := 0
	sc := bufio.NewScanner(stdout)
	for held < holds && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "HELD ") {
			held++
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	t.Logf("the controller killed with SIGKILL (ship %s) had said:\n%s", revision, said.String())
	if held < holds {
		t.Fatalf("the controller ended with %d of %d hosts held", held, holds)
	}
	return said.String()
}

func (s powerCut) Run(ctx context.Context, d *Deploy) (bool, error) {
	if !d.Entry.Matches(s.machine.Addr) {
		return false, nil
	}
	s.machine.Kill(s.t)
	return true, nil
}

// TestFleetFaults ships to a fleet (a load balancer, two web hosts, a
// PostgreSQL db host, behind a bastion) under load through the balancer
// and meets a fault after each ship, then checks what every host serves,
// what the run said, and that the next plain ship brings every host to
// one release with no repair by hand:
//
//   - a web host's power is cut right after its switch in a rolling
//     ship: the run fails naming the host, the host that answers goes
//     back, the lost host stays out of the balancer (no visitor meets
//     the release the others left, even once it is back), status shows
//     it apart, and the next ship breaks the lock it kept;
//   - the controller (the process running the ship) is killed with
//     SIGKILL between the batches of a rolling ship, and between the
//     switch and the health check of a ship that switches every host at
//     once: the next ship from this machine finds the locks stale;
//   - the db host's network is cut just before migrate, and just before
//     the snapshot (which runs there): no host switches, and the next
//     ship, the network back, breaks the lock the lost run left;
//   - one web host's disk fills during the build: the run fails naming
//     the host and the full disk, and no host switches;
//   - a web host's power is cut right after its switch in a ship that
//     switches every host at once: the other goes back, the lost one
//     stays out of the balancer until the next ship.
//
// No request through the balancer may fail, but while the database
// cannot be reached (those are counted and reported) and those in flight
// on a host when its power goes (at most one per client).
func TestFleetFaults(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	needMachineExample(t)
	f := testenv.NewFleet(t, 4, true)
	roles := []string{"lb", "web", "web", "db"}
	site, _ := fleetSite(t, f, 91, roles, "    fleet: {rolling: {batch: 1}}\n")
	lb, webs, db := f.Hosts[0], f.Hosts[1:3], f.Hosts[3]
	lost := webs[1]
	current := func(m *testenv.Machine) string {
		return strings.TrimPrefix(m.Shell(t, "readlink /srv/www/djship91/current"), "releases/")
	}
	// throughBalancer asks the balancer n times and counts the revisions.
	throughBalancer := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			seen[revisionAt(t, site, lb.Addr)]++
		}
		return seen
	}
	// lostHost checks what a ship that lost the host reports and leaves:
	// the other web host back on live, the balancer passing live alone.
	lostHost := func(err error, out, how, live string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), lost.Addr) || !strings.Contains(err.Error(), "could not connect again") {
			t.Errorf("the ship that lost %s %s: %v", lost.Name, how, err)
		}
		if !regexp.MustCompile(regexp.QuoteMeta(lost.Addr) + `[^\n]* left out of the load balancer until a ship or rollback brings every host to one release`).MatchString(out) {
			t.Errorf("the output does not say that %s is left out of the load balancer:\n%s", lost.Name, out)
		}
		if got := current(webs[0]); got != live {
			t.Errorf("%s, which answers, is on %s after the failed run, want %s", webs[0].Name, got, live)
		}
		if got := throughBalancer(10); got[live] != 10 {
			t.Errorf("the balancer passes on %v, want %s alone", got, live)
		}
	}
	// comeBack starts the lost host again and waits until it serves the
	// release it had switched to (its services start after its sshd).
	comeBack := func(switched string) {
		t.Helper()
		lost.Start(t)
		if got := current(lost); got != switched {
			t.Errorf("%s came back on %s, want %s, the release it had switched to", lost.Name, got, switched)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := askRevision(site, lost.Addr)
			if err == nil {
				if got != switched {
					t.Errorf("%s came back serving %s, want %s", lost.Name, got, switched)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not serve a minute after it came back: %v", lost.Name, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if out, err := shipFleet(t, site, "v1"); err != nil {
		t.Fatalf("the first ship: %v\n%s", err, out)
	}
	l := balancedLoad(site, lb.Addr, 4, loadInterval)

	remove := addStepFor(site.Settings.Project, "switch", true, powerCut{t: t, machine: lost})
	out, err := shipFleet(t, site, "v2")
	remove()
	lostHost(err, out, "in a rolling batch", "v1")

	// The lost host comes back on the release it had switched to, which
	// no other host serves: the balancer keeps it out, status shows it.
	comeBack("v2")
	if got := throughBalancer(10); got["v1"] != 10 {
		t.Errorf("with %s back, the balancer passes on %v, want v1 alone", lost.Name, got)
	}
	var st bytes.Buffer
	statuses, err := Status(context.Background(), site, "test", Options{Out: &st, Secrets: shipSecrets})
	if err == nil || !strings.Contains(err.Error(), "the hosts do not run one release") || !strings.Contains(err.Error(), "mage ship:test") {
		t.Errorf("status with a host apart: %v\n%s", err, st.String())
	}
	for i, s := range statuses {
		want := map[int]string{0: "holds out " + site.Environments["test"].Hosts[2].String(), 2: "v2 (apart)"}[i]
		got := s.Live
		if i == 0 {
			got = s.Health
		}
		if want != "" && !strings.HasPrefix(got, want) {
			t.Errorf("status of the %s host shows %q, want %q\n%s", roles[i], got, want, st.String())
		}
	}
	t.Logf("status:\n%s", st.String())

	// The next plain ship: the lock the lost host kept is stale, and
	// every host ends on one release, in the balancer.
	out, err = shipFleet(t, site, "v3")
	if err != nil {
		t.Fatalf("the ship after the host came back: %v\n%s", err, out)
	}
	if !strings.Contains(out, "broke the lock left by") {
		t.Errorf("the ship does not say it broke the lost host's stale lock:\n%s", out)
	}
	for _, m := range webs {
		if got := current(m); got != "v3" {
			t.Errorf("%s is on %s after the next ship, want v3", m.Name, got)
		}
	}
	if got := throughBalancer(10); got["v3"] != 10 {
		t.Errorf("after the next ship the balancer passes on %v, want v3 alone", got)
	}
	if got := lb.Shell(t, "grep -c ' down;' /etc/nginx/sites-available/djship91-lb.conf || true"); got != "0" {
		t.Errorf("%s hosts are still marked down in the balancer", got)
	}
	if _, err := Status(context.Background(), site, "test", Options{Out: &st, Secrets: shipSecrets}); err != nil {
		t.Errorf("status after the next ship: %v", err)
	}

	// The controller is killed between two batches: the first web host
	// has switched and is still drained, the second has not switched.
	said := killController(t, site, "v4", webs[0].Addr, false, 1)
	if got := current(webs[0]) + " " + current(webs[1]); got != "v4 v3" {
		t.Errorf("after the controller was killed between batches the web hosts are on %s, want v4 v3", got)
	}
	if !strings.Contains(said, "changed  switch") {
		t.Errorf("the killed controller had not switched the first batch:\n%s", said)
	}
	if got := throughBalancer(10); got["v3"] != 10 {
		t.Errorf("after the controller was killed between batches the balancer passes on %v, want v3 alone (the switched host drained)", got)
	}
	st.Reset()
	if _, err := Status(context.Background(), site, "test", Options{Out: &st, Secrets: shipSecrets}); err == nil || !strings.Contains(err.Error(), webs[0].Addr) || !strings.Contains(st.String(), "it is stale: that process no longer runs") {
		t.Errorf("status after the controller was killed between batches: %v\n%s", err, st.String())
	}
	t.Logf("status:\n%s", st.String())
	out, err = shipFleet(t, site, "v5")
	if err != nil || strings.Count(out, "broke the lock left by") != len(webs)+2 {
		t.Fatalf("the ship after the controller was killed between batches: %v; want a stale lock broken on each of the %d hosts\n%s", err, len(webs)+2, out)
	}
	for _, m := range webs {
		if got := current(m); got != "v5" {
			t.Errorf("%s is on %s after the next ship, want v5", m.Name, got)
		}
	}

	// Killed between the switch and the health check, every host at once:
	// every web host has switched, none was checked.
	said = killController(t, site, "v6", "*", true, len(webs))
	if got := current(webs[0]) + " " + current(webs[1]); got != "v6 v6" {
		t.Errorf("after the controller was killed before the health check the web hosts are on %s, want v6 v6", got)
	}
	out, err = shipFleet(t, site, "v7")
	if err != nil || !strings.Contains(out, "broke the lock left by") {
		t.Fatalf("the ship after the controller was killed before the health check: %v\n%s", err, out)
	}
	for _, m := range webs {
		if got := current(m); got != "v7" {
			t.Errorf("%s is on %s after the next ship, want v7", m.Name, got)
		}
	}
	if got := throughBalancer(10); got["v7"] != 10 {
		t.Errorf("after the next ship the balancer passes on %v, want v7 alone", got)
	}

	total, failed, bad, first := l.finish()
	t.Logf("through the load balancer: %d requests over a ship that lost a web host mid-switch, its return, two ships whose controller was killed and the ships after each: %d failed, %d non-200", total, failed, bad)
	if total < 100 || failed != 0 || bad != 0 {
		t.Errorf("%d requests, %d failed, %d non-200; first problem: %v", total, failed, bad, first)
	}

	// The db host's network is cut just before migrate, then just before
	// the snapshot: no host switches, and once the network is back the
	// next ship ships. While the database cannot be reached the site
	// cannot answer either: those requests are counted, not forbidden.
	//
	// dbCut cuts the db host's network before the step anchor of the ship
	// of release, brings it back once the run has ended, and checks that
	// no host switched and every web host marked release failed.
	dbCut := func(anchor, release string) error {
		t.Helper()
		l := balancedLoad(site, lb.Addr, 4, loadInterval)
		remove := addStepFor(site.Settings.Project, anchor, false, networkCut{t: t, machine: db})
		start := time.Now()
		out, err := shipFleet(t, site, release)
		took := time.Since(start)
		remove()
		db.Shell(t, "ip link set host0 up")
		reachable(t, f.Bastion, db)
		if strings.Contains(out, "changed  switch") {
			t.Errorf("a host switched though the db host was cut off before %s:\n%s", anchor, out)
		}
		for _, m := range webs {
			if got := current(m); got != "v7" {
				t.Errorf("%s is on %s after the db host was cut off before %s, want v7", m.Name, got, anchor)
			}
			if got := releaseState(t, m, release); got != "failed" {
				t.Errorf("the unfinished release %s of %s is %s, want failed", release, m.Name, got)
			}
		}
		waitForRevision(t, site, lb.Addr, "v7")
		total, failed, bad, _ := l.finish()
		t.Logf("the ship whose db host's network was cut before %s failed after %s; through the load balancer meanwhile: %d requests, %d failed, %d non-200", anchor, took.Round(time.Second), total, failed, bad)
		return err
	}
	if err := dbCut("migrate", "v8"); err == nil || !strings.Contains(err.Error(), `step "migrate"`) {
		t.Errorf("the ship whose database went away during migrate: %v", err)
	}
	// The snapshot runs on the db host: djship loses the host, and the
	// next ship breaks the lock the lost run left on it.
	if err := dbCut("database snapshot", "v9"); err == nil || !strings.Contains(err.Error(), db.Addr) || !strings.Contains(err.Error(), "could not connect again") || !strings.Contains(err.Error(), "mage ship:test") {
		t.Errorf("the ship whose db host's network was cut before the snapshot: %v", err)
	}

	// One web host's disk fills during the build: the build fails there,
	// no host switches, every host drops the unfinished release, and no
	// visitor notices.
	l = balancedLoad(site, lb.Addr, 4, loadInterval)
	full := webs[0]
	remove = addStepFor(site.Settings.Project, "release folder", false, diskFill{machine: full})
	out, err = shipFleet(t, site, "v10")
	remove()
	if err == nil || !strings.Contains(err.Error(), full.Addr) || !strings.Contains(err.Error(), "the disk of") || !strings.Contains(err.Error(), "is full") || !strings.Contains(err.Error(), "then ship again") {
		t.Errorf("the ship that met a full disk on %s: %v\n%s", full.Name, err, out)
	}
	if strings.Contains(out, "changed  switch") {
		t.Errorf("a host switched though a build failed:\n%s", out)
	}
	if !strings.Contains(out, "removed the unfinished v10") {
		t.Errorf("the output does not say that %s removed the release it could not mark failed:\n%s", full.Name, out)
	}
	for _, m := range webs {
		if got := current(m); got != "v7" {
			t.Errorf("%s is on %s after the disk filled, want v7", m.Name, got)
		}
		// The full host could not mark it failed: it removed it instead.
		want := map[bool]string{true: "gone", false: "failed"}[m == full]
		if got := releaseState(t, m, "v10"); got != want {
			t.Errorf("the unfinished release v10 of %s is %s, want %s", m.Name, got, want)
		}
	}
	if got := throughBalancer(10); got["v7"] != 10 {
		t.Errorf("after the build failed on a full disk the balancer passes on %v, want v7 alone", got)
	}
	// Space is freed, as an operator would.
	full.Shell(t, "umount -l /srv/www/djship91/releases && umount -l /root/full")
	total, failed, bad, first = l.finish()
	t.Logf("the ship that met a full disk: through the load balancer %d requests, %d failed, %d non-200", total, failed, bad)
	if failed != 0 || bad != 0 {
		t.Errorf("%d requests failed and %d were not 200 while a build met a full disk; first problem: %v", failed, bad, first)
	}

	// A web host's power is cut right after its switch in a ship that
	// switches every host at once: the other host goes back, the lost
	// one stays out of the balancer, and the next ship, once the host is
	// back, brings both to one release.
	l = balancedLoad(site, lb.Addr, 4, loadInterval)
	env := site.Environments["test"]
	eachHost(env, func(s *sites.Settings) { s.Fleet.Rolling = sites.Rolling{} })
	remove = addStepFor(site.Settings.Project, "switch", true, powerCut{t: t, machine: lost})
	out, err = shipFleet(t, site, "v11")
	remove()
	eachHost(env, func(s *sites.Settings) { s.Fleet.Rolling = sites.Rolling{Batch: "1"} })
	lostHost(err, out, "switching every host at once", "v7")
	comeBack("v11")
	out, err = shipFleet(t, site, "v12")
	if err != nil {
		t.Fatalf("the ship after the host came back: %v\n%s", err, out)
	}
	if !strings.Contains(out, "broke the lock left by") {
		t.Errorf("the ship does not say it broke the lost host's stale lock:\n%s", out)
	}
	for _, m := range webs {
		if got := current(m); got != "v12" {
			t.Errorf("%s is on %s after the next ship, want v12", m.Name, got)
		}
	}
	if got := throughBalancer(10); got["v12"] != 10 {
		t.Errorf("after the next ship the balancer passes on %v, want v12 alone", got)
	}
	total, failed, bad, first = l.finish()
	t.Logf("through the load balancer: %d requests over a ship that lost a web host switching every host at once, its return and the next ship: %d failed, %d non-200 (first problem: %v)", total, failed, bad, first)
	// Only a request in flight on the host when its power went may fail:
	// at most one per client.
	if failed+bad > 4 {
		t.Errorf("%d requests failed and %d were not 200, more than the 4 clients had in flight; first problem: %v", failed, bad, first)
	}
}

// releaseState is the state a release of the fleet's site is marked
// with on m (building, complete, failed), or gone.
func releaseState(t *testing.T, m *testenv.Machine, release string) string {
	t.Helper()
	return m.Shell(t, "cat /srv/www/djship91/releases/"+release+"/.djship-state 2>/dev/null || echo gone")
}

// waitForRevision waits up to 2 minutes for the site at addr to show
// revision, as it does once what it needs answers again.
func waitForRevision(t *testing.T, site *sites.Site, addr, revision string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := askRevision(site, addr)
		if err == nil && got == revision {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not show %s 2 minutes on: %s %v", addr, revision, got, err)
		}
		time.Sleep(time.Second)
	}
}

// diskFill is a step that, on one machine, puts the releases folder on a
// small file system of its own (a copy of what it held, with its owner
// and ACLs) and fills it, as a host whose disk runs out would be.
type diskFill struct{ machine *testenv.Machine }

func (diskFill) Name() string { return "disk fill" }

func (s diskFill) Run(ctx context.Context, d *Deploy) (bool, error) {
	if !d.Entry.Matches(s.machine.Addr) {
		return false, nil
	}
	_, err := s.machine.Exec(ctx, `set -e
cd /srv/www/djship91
getfacl -p releases > /root/releases.acl
mkdir -p /root/full
mount -t tmpfs -o size=$(( $(du -sk releases | cut -f1) + 8192 ))k tmpfs /root/full
cp -a releases/. /root/full/
mount --bind /root/full releases
setfacl --restore=/root/releases.acl
dd if=/dev/zero of=releases/.filler bs=64k 2>/dev/null || true
test "$(df --output=avail releases | tail -1)" -eq 0`)
	return true, err
}

// reachable waits until from can open a TCP connection to m's sshd, as
// a user who brought a host's network back would before shipping again:
// a link set up again takes a moment to carry traffic, and a connection
// meanwhile fails with "No route to host".
func reachable(t *testing.T, from, m *testenv.Machine) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := from.Exec(context.Background(), `timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/22"' sh "$1"`, m.Addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot reach %s:22 a minute after its network came back: %v\n%s", from.Name, m.Name, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// networkCut is a step that takes a machine's network link down, as a
// cut cable or a failed switch port would.
type networkCut struct {
	t       *testing.T
	machine *testenv.Machine
}

func (networkCut) Name() string { return "network cut" }

func (s networkCut) Run(ctx context.Context, d *Deploy) (bool, error) {
	_, err := s.machine.Exec(ctx, "ip link set host0 down")
	return true, err
}
