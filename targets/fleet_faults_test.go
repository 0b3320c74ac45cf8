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
//   - the db host's network is cut just before migrate: no host
//     switches, and the next ship, the network back, ships.
//
// No request through the balancer may fail, but while the database
// cannot be reached (those are counted and reported).
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
	if out, err := shipFleet(t, site, "v1"); err != nil {
		t.Fatalf("the first ship: %v\n%s", err, out)
	}
	l := balancedLoad(site, lb.Addr, 4, loadInterval)

	remove := addStepFor(site.Settings.Project, "switch", true, powerCut{t: t, machine: lost})
	out, err := shipFleet(t, site, "v2")
	remove()
	if err == nil || !strings.Contains(err.Error(), lost.Addr) || !strings.Contains(err.Error(), "could not connect again") {
		t.Errorf("the ship that lost %s: %v", lost.Name, err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(lost.Addr) + `[^\n]* left out of the load balancer until a ship or rollback brings every host to one release`).MatchString(out) {
		t.Errorf("the output does not say that %s is left out of the load balancer:\n%s", lost.Name, out)
	}
	if got := current(webs[0]); got != "v1" {
		t.Errorf("%s, which answers, is on %s after the failed run, want v1", webs[0].Name, got)
	}
	if got := throughBalancer(10); got["v1"] != 10 {
		t.Errorf("the balancer passes on %v, want v1 alone", got)
	}

	// The lost host comes back on the release it had switched to, which
	// no other host serves: the balancer keeps it out, status shows it.
	lost.Start(t)
	if got := current(lost); got != "v2" {
		t.Errorf("%s came back on %s, want v2, the release it had switched to", lost.Name, got)
	}
	// Its services start after its sshd answers.
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := askRevision(site, lost.Addr)
		if err == nil {
			if got != "v2" {
				t.Errorf("%s came back serving %s, want v2", lost.Name, got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve a minute after it came back: %v", lost.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
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

	// The db host's network is cut just before migrate: migrate fails, no
	// host switches, and once the network is back the next ship ships.
	// While the database cannot be reached the site cannot answer either:
	// those requests are counted, not forbidden.
	l = balancedLoad(site, lb.Addr, 4, loadInterval)
	remove = addStepFor(site.Settings.Project, "migrate", false, networkCut{t: t, machine: db})
	start := time.Now()
	out, err = shipFleet(t, site, "v8")
	took := time.Since(start)
	remove()
	db.Shell(t, "ip link set host0 up")
	if err == nil || !strings.Contains(err.Error(), `step "migrate"`) {
		t.Errorf("the ship whose database went away during migrate: %v", err)
	}
	if strings.Contains(out, "changed  switch") {
		t.Errorf("a host switched though migrate failed:\n%s", out)
	}
	for _, m := range webs {
		if got := current(m); got != "v7" {
			t.Errorf("%s is on %s after migrate failed, want v7", m.Name, got)
		}
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		if got, err := askRevision(site, lb.Addr); err == nil && got == "v7" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the site does not answer 2 minutes after the db host's network came back: %v", err)
		}
		time.Sleep(time.Second)
	}
	cutTotal, cutFailed, cutBad, _ := l.finish()
	t.Logf("the ship whose db host's network was cut before migrate failed after %s; through the load balancer meanwhile: %d requests, %d failed, %d non-200", took.Round(time.Second), cutTotal, cutFailed, cutBad)
	out, err = shipFleet(t, site, "v9")
	if err != nil {
		t.Fatalf("the ship after the db host's network came back: %v\n%s", err, out)
	}
	for _, m := range webs {
		if got := current(m); got != "v9" {
			t.Errorf("%s is on %s after the next ship, want v9", m.Name, got)
		}
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
