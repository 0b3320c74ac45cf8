package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A test run that is killed (SIGKILL, a CI timeout, a machine that
// stops) cannot run its cleanups: its machines keep running, their
// overlays stay mounted, their bridges stay up with their iptables rule.
// Each thing the harness makes records the test process that owns it,
// and the first bridge a test process makes removes whatever is owned by
// a process that no longer lives. Two test processes side by side (the
// test command runs two) keep each other's machines.

// machineDirPattern matches the folders of machines (boot).
const machineDirPattern = "djship-machine-*"

// ownerFile is the file in a machine's folder that names the process that
// booted it.
const ownerFile = "owner"

// aliasPrefix starts the interface alias that names the process that
// made a bridge.
const aliasPrefix = "djship-test owner "

var (
	sweepOnce    sync.Once
	sweptReport  []string
	sweptErr     error
	creationLock sync.Mutex
)

// owner is a process: its PID and its start time, so that a PID the
// kernel gives again to another process is not taken for the owner.
type owner struct {
	pid   int
	start string
}

// thisProcess is the owner of what this test process makes.
func thisProcess() owner {
	return owner{pid: os.Getpid(), start: startTime(os.Getpid())}
}

func (o owner) String() string { return fmt.Sprintf("%d %s", o.pid, o.start) }

// alive says whether the owner still runs.
func (o owner) alive() bool {
	return o.pid > 0 && o.start != "" && startTime(o.pid) == o.start
}

// parseOwner reads an owner as String writes it; the zero owner, which
// no process is, when the text is not one.
func parseOwner(s string) owner {
	f := strings.Fields(s)
	if len(f) != 2 {
		return owner{}
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return owner{}
	}
	return owner{pid: pid, start: f[1]}
}

// startTime is a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat), or "" when no such process runs.
func startTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// lockCreation holds the harness's lock on making bridges and machines,
// shared with other test processes that make theirs, so that a sweep
// (which takes it alone) never sees one made but not yet marked with its
// owner. It returns the function that lets it go.
func lockCreation(exclusive bool) func() {
	creationLock.Lock()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	os.MkdirAll(CacheDir(), 0o755)
	f, err := os.OpenFile(filepath.Join(CacheDir(), "machines.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return creationLock.Unlock
	}
	if syscall.Flock(int(f.Fd()), how) != nil {
		f.Close()
		return creationLock.Unlock
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		creationLock.Unlock()
	}
}

// sweepLeftoversOnce removes, the first time a test process calls it,
// what killed test runs left behind; it returns what it removed.
func sweepLeftoversOnce() ([]string, error) {
	sweepOnce.Do(func() { sweptReport, sweptErr = SweepLeftovers() })
	return sweptReport, sweptErr
}

// SweepLeftovers removes the machines, overlay mounts, machine folders,
// bridges and iptables rules of test processes that no longer run, and
// returns a line for each thing removed. What a living test process owns
// stays.
func SweepLeftovers() ([]string, error) {
	unlock := lockCreation(true)
	defer unlock()
	var removed []string
	// Machines first: their end frees their mounts and their veth links.
	for _, p := range orphanMachines() {
		if init := childNamed(p.pid, "systemd"); init != 0 {
			// The container's init: its PID namespace ends with it.
			syscall.Kill(init, syscall.SIGKILL)
		}
		syscall.Kill(p.pid, syscall.SIGKILL)
		waitGone(p.pid, 10*time.Second)
		removed = append(removed, fmt.Sprintf("machine %s (systemd-nspawn, PID %d)", p.name, p.pid))
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), machineDirPattern))
	for _, dir := range dirs {
		if machineDirOwner(dir).alive() {
			continue
		}
		for _, mnt := range mountsBelow(dir) {
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				return removed, fmt.Errorf("unmount %s, left by a killed test run: %v: %s", mnt, err, out)
			}
			removed = append(removed, "mount "+mnt)
		}
		if len(mountsBelow(dir)) > 0 {
			return removed, fmt.Errorf("%s, left by a killed test run, is still mounted", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("remove %s, left by a killed test run: %w", dir, err)
		}
		removed = append(removed, "folder "+dir)
	}
	links, _ := filepath.Glob("/sys/class/net/djsbr*")
	for _, link := range links {
		name := filepath.Base(link)
		alias, _ := os.ReadFile(filepath.Join(link, "ifalias"))
		if parseOwner(strings.TrimPrefix(strings.TrimSpace(string(alias)), aliasPrefix)).alive() {
			continue
		}
		for exec.Command("iptables", "-D", "FORWARD", "-i", name, "-j", "ACCEPT").Run() == nil {
			removed = append(removed, "iptables rule FORWARD -i "+name)
		}
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
			return removed, fmt.Errorf("delete bridge %s, left by a killed test run: %v: %s", name, err, out)
		}
		removed = append(removed, "bridge "+name)
	}
	return removed, nil
}

// machineDirOwner reads the owner a machine's folder names; the zero
// owner when it names none.
func machineDirOwner(dir string) owner {
	data, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return owner{}
	}
	return parseOwner(string(data))
}

type nspawnProcess struct {
	pid  int
	name string
}

// orphanMachines are the systemd-nspawn processes that boot a machine
// folder whose owner no longer runs.
func orphanMachines() []nspawnProcess {
	var found []nspawnProcess
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "systemd-nspawn" {
			continue
		}
		var root, name string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--directory="); ok {
				root = v
			}
			if v, ok := strings.CutPrefix(a, "--machine="); ok {
				name = v
			}
		}
		dir := filepath.Dir(root)
		if ok, _ := filepath.Match(machineDirPattern, filepath.Base(dir)); !ok || filepath.Base(root) != "root" {
			continue
		}
		if !machineDirOwner(dir).alive() {
			found = append(found, nspawnProcess{pid: pid, name: name})
		}
	}
	return found
}

// childNamed is the first child of pid whose command is name, or 0.
func childNamed(pid int, name string) int {
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output()
	for _, f := range strings.Fields(string(out)) {
		child, _ := strconv.Atoi(f)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child)); strings.TrimSpace(string(comm)) == name {
			return child
		}
	}
	return 0
}

// waitGone waits until no process pid runs (or a zombie is all that is
// left of it), at most for d.
func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountsBelow lists the mount points at or below dir in this mount
// namespace, deepest first.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// Mount points escape spaces and the like as octal.
		mnt := unescapeMount(fields[4])
		if mnt == dir || strings.HasPrefix(mnt, dir+"/") {
			mounts = append(mounts, mnt)
		}
	}
	for i, j := 0, len(mounts)-1; i < j; i, j = i+1, j-1 {
		mounts[i], mounts[j] = mounts[j], mounts[i]
	}
	return mounts
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
