package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// killedRunEnv makes TestKilledRunHelper boot a machine and wait to be
// killed, as a test run that a CI timeout or a SIGKILL ends.
const killedRunEnv = "DJSHIP_TEST_KILLED_RUN"

// TestKilledRunHelper is the killed test run of
// TestLeftoversOfAKilledRunAreRemoved: with killedRunEnv set, it boots a
// machine, says where, and waits; otherwise it does nothing.
func TestKilledRunHelper(t *testing.T) {
	if os.Getenv(killedRunEnv) == "" {
		return
	}
	m := BootMachine(t)
	fmt.Printf("MACHINE %s %s %s\n", m.Name, m.dir, m.bridge.Name)
	select {}
}

// TestLeftoversOfAKilledRunAreRemoved kills a test process (SIGKILL, so
// none of its cleanups run) while its machine runs, and checks that the
// sweep the next run makes removes the machine, its overlay mount, its
// folder, its bridge and the bridge's iptables rule, and keeps the bridge
// of a test process that still runs.
func TestLeftoversOfAKilledRunAreRemoved(t *testing.T) {
	NeedMachines(t)
	Image(t)
	kept := NewBridge(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRunHelper$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), killedRunEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var name, dir, bridge string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "MACHINE" {
			name, dir, bridge = f[1], f[2], f[3]
			break
		}
	}
	if name == "" {
		cmd.Process.Kill()
		t.Fatalf("the killed run's helper booted no machine: %v", cmd.Wait())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	cmd.Process.Kill()
	cmd.Wait()
	// A sweep of its own, later, would remove them too if this test failed.
	t.Cleanup(func() { SweepLeftovers() })

	// What the killed run left: its machine runs on, mounted, on its bridge.
	time.Sleep(500 * time.Millisecond)
	if len(machineProcesses(dir)) == 0 {
		t.Fatalf("machine %s stopped with the killed run: nothing is left to sweep", name)
	}
	if len(mountsBelow(dir)) == 0 || !exists("/sys/class/net/"+bridge) {
		t.Fatalf("the killed run left no mount below %s (%v) or no bridge %s", dir, mountsBelow(dir), bridge)
	}
	_, iptablesErr := exec.LookPath("iptables")
	rule := func(b string) bool {
		return exec.Command("iptables", "-C", "FORWARD", "-i", b, "-j", "ACCEPT").Run() == nil
	}
	if iptablesErr == nil && !rule(bridge) {
		t.Fatalf("the killed run's bridge %s has no FORWARD rule", bridge)
	}

	removed, err := SweepLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("removed:\n  %s", strings.Join(removed, "\n  "))
	report := strings.Join(removed, "\n")
	for _, want := range []string{"machine " + name, "bridge " + bridge, "folder " + dir} {
		if !strings.Contains(report, want) {
			t.Errorf("the sweep's report does not say %q", want)
		}
	}
	if p := machineProcesses(dir); len(p) != 0 {
		t.Errorf("machine %s still runs after the sweep: PIDs %v", name, p)
	}
	if m := mountsBelow(dir); len(m) != 0 {
		t.Errorf("still mounted after the sweep: %v", m)
	}
	if exists(dir) {
		t.Errorf("folder %s is still there after the sweep", dir)
	}
	if exists("/sys/class/net/" + bridge) {
		t.Errorf("bridge %s is still there after the sweep", bridge)
	}
	if iptablesErr == nil && rule(bridge) {
		t.Errorf("the FORWARD rule of bridge %s is still there after the sweep", bridge)
	}
	// What a living test process owns stays.
	if !exists("/sys/class/net/"+kept.Name) || (iptablesErr == nil && !rule(kept.Name)) {
		t.Errorf("the sweep removed bridge %s of this test, which still runs", kept.Name)
	}
}

// machineProcesses are the PIDs of the systemd-nspawn processes that
// boot the machine folder dir.
func machineProcesses(dir string) []string {
	out, _ := exec.Command("pgrep", "-f", "systemd-nspawn --directory="+filepath.Join(dir, "root")+" ").Output()
	return strings.Fields(string(out))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestOwnerOfAProcessThatEnded(t *testing.T) {
	me := thisProcess()
	if !me.alive() || parseOwner(me.String()) != me {
		t.Fatalf("this process, %v, is not alive as its own owner", me)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []owner{
		{pid: cmd.Process.Pid, start: me.start},
		{pid: me.pid, start: me.start + "1"}, // a PID given again
		parseOwner(""),
		parseOwner("12 x y"),
	} {
		if o.alive() {
			t.Errorf("owner %v is taken for a living process", o)
		}
	}
	if got := unescapeMount(`/tmp/a\040b/root`); got != "/tmp/a b/root" {
		t.Errorf("unescapeMount = %q", got)
	}
}
