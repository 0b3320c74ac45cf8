package testenv

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Machines are fresh Debian hosts with systemd as PID 1, booted by
// systemd-nspawn from a minimal root file system that debootstrap builds
// once and the harness caches. Each boots from a throwaway overlay of the
// cached tree, so nothing a test does reaches the cache or another
// machine; each has a network interface of its own on a bridge, so that
// its ports 22, 80 and 443 are its own and several run side by side.
//
// The image is what a cloud provider hands out: Debian's minbase with
// systemd, D-Bus, OpenSSH, sudo and Python, an /etc/hosts naming the
// machine, and the SudoUser with passwordless sudo and the test key.
// Everything a site needs beyond that, djship installs.

// MachineSuite is the Debian release the machines run, the one this
// machine runs.
const MachineSuite = "bookworm"

// machinePackages are the packages debootstrap adds to minbase.
var machinePackages = []string{"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3"}

// imageVersion changes when the way the image is made changes, so that a
// cached image of an older harness is not used.
const imageVersion = "1"

// Bridge is a network that machines join: a Linux bridge on this
// machine with the first address of its subnet, and an apt proxy on that
// address through which the machines reach Debian's mirror (they have no
// other way out).
type Bridge struct {
	// Name is the bridge's interface name.
	Name string
	// Gateway is this machine's address on the bridge.
	Gateway string
	prefix  string // the first three octets
	proxy   *aptProxy
	mu      sync.Mutex
	next    int
}

// Machine is one booted host.
type Machine struct {
	// Name is its host name.
	Name string
	// Addr is its address on the bridge; sshd listens on port 22.
	Addr string
	// KnownHosts is a known_hosts file that lists its host key.
	KnownHosts string
	// HostKey is its public host key, made for this boot.
	HostKey ssh.PublicKey
	// Root is its root file system as this machine sees it.
	Root string
	// BootTime is how long it took from starting systemd-nspawn to an
	// SSH server that answers.
	BootTime time.Duration
	// Log is the container's console output.
	Log    string
	cmd    *exec.Cmd
	bridge *Bridge
	leader int
	dir    string
	exited chan struct{}
	// nspawnArgs are systemd-nspawn options beyond every machine's.
	nspawnArgs []string
}

var (
	imageMu    sync.Mutex
	imageDirs  = map[string]string{}
	bridgeSeq  int
	bridgeSeqM sync.Mutex
)

// NeedMachines stops the test (Missing) unless fresh machines can boot
// here: root, systemd-nspawn, debootstrap and ip.
func NeedMachines(t testing.TB) {
	t.Helper()
	NeedRoot(t)
	Command(t, "systemd-nspawn", "systemd-container")
	Command(t, "debootstrap", "debootstrap")
	Command(t, "ip", "iproute2")
	Command(t, "nsenter", "util-linux")
}

// Image returns the cached root file system of the machines, building it
// first when the cache has none for the current package list.
func Image(t testing.TB) string {
	t.Helper()
	NeedMachines(t)
	dir, err := image()
	if err != nil {
		t.Fatalf("machine image: %v", err)
	}
	return dir
}

// ImageKey names the cached image: it changes with the suite, the
// packages, the mirror and the harness's way of making it.
func ImageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", imageVersion, MachineSuite, mirror(), strings.Join(machinePackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// CacheDir is where the harness keeps the machine image and the packages
// the machines downloaded: $DJSHIP_TEST_CACHE, or djship-test in the
// user's cache folder.
func CacheDir() string {
	if d := os.Getenv("DJSHIP_TEST_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "djship-test")
}

// mirror is the Debian mirror this machine's apt uses.
func mirror() string {
	data, _ := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "URIs:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func image() (string, error) {
	return cachedImage(ImageKey(), buildImage)
}

// cachedImage returns the image named key from the cache, built by build
// first when the cache has none.
func cachedImage(key string, build func(dir string) error) (string, error) {
	imageMu.Lock()
	defer imageMu.Unlock()
	if d, ok := imageDirs[key]; ok {
		return d, nil
	}
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "rootfs-"+key)
	// Test processes of several packages may build at once: one builds,
	// the others wait for it.
	lock, err := os.OpenFile(filepath.Join(cache, "rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "etc", "djship-test-image")); err != nil {
		if err := build(dir); err != nil {
			return "", err
		}
	}
	imageDirs[key] = dir
	return dir, nil
}

// buildImage runs debootstrap into a new folder, makes the test user and
// moves the folder into place once it is complete.
func buildImage(dir string) error {
	tmp := dir + ".building"
	os.RemoveAll(tmp)
	start := time.Now()
	args := []string{"--variant=minbase", "--include=" + strings.Join(machinePackages, ","), MachineSuite, tmp, mirror()}
	if out, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, tail(out, 30))
	}
	steps := [][]string{
		{"useradd", "--create-home", "--shell", "/bin/bash", SudoUser},
		{"usermod", "-p", "*", SudoUser},
	}
	for _, s := range steps {
		if out, err := exec.Command("chroot", append([]string{tmp}, s...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("image: %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	files := map[string]string{
		"etc/sudoers.d/djship-test": SudoUser + " ALL=(ALL) NOPASSWD: ALL\n",
		// The same sources as this machine, so the machines get the same
		// versions of every package.
		"etc/apt/sources.list.d/debian.sources": mustRead("/etc/apt/sources.list.d/debian.sources"),
		"etc/apt/sources.list":                  "",
		"etc/djship-test-image":                 fmt.Sprintf("built by djship's test harness in %s: debootstrap %s\n", time.Since(start).Round(time.Second), strings.Join(args, " ")),
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "etc/sudoers.d/") {
			mode = 0o440
		}
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(data), mode); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

func mustRead(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// NewBridge makes a bridge for machines, with its apt proxy, and removes
// it at the test's end.
func NewBridge(t testing.TB) *Bridge {
	t.Helper()
	NeedMachines(t)
	removed, err := sweepLeftoversOnce()
	if len(removed) > 0 {
		t.Logf("removed what killed test runs left behind:\n  %s", strings.Join(removed, "\n  "))
	}
	if err != nil {
		t.Fatal(err)
	}
	bridgeSeqM.Lock()
	bridgeSeq++
	seq := bridgeSeq
	bridgeSeqM.Unlock()
	var b *Bridge
	for try := 0; try < 50 && b == nil; try++ {
		// A subnet in 10.213.0.0/16 that no interface here uses yet.
		third := (os.Getpid()*7 + seq*13 + try*31) % 250
		prefix := fmt.Sprintf("10.213.%d", third+1)
		if out, _ := exec.Command("ip", "-o", "addr").Output(); bytes.Contains(out, []byte(" "+prefix+".")) {
			continue
		}
		name := fmt.Sprintf("djsbr%d", third+1)
		unlock := lockCreation(false)
		out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput()
		if err == nil {
			// The bridge names its owner, for the sweep of a later run.
			out, err = exec.Command("ip", "link", "set", name, "alias", aliasPrefix+thisProcess().String()).CombinedOutput()
		}
		unlock()
		if err != nil {
			if bytes.Contains(out, []byte("exists")) {
				continue
			}
			t.Fatalf("make bridge %s: %v: %s", name, err, out)
		}
		b = &Bridge{Name: name, Gateway: prefix + ".1", prefix: prefix, next: 1}
	}
	if b == nil {
		t.Fatal("no free subnet in 10.213.0.0/16 for a bridge")
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", b.Name).Run() })
	// Docker, which container mode's tests run here, sets the policy of
	// iptables' FORWARD chain to DROP, and its br_netfilter sends bridged
	// traffic through it: the machines on this bridge would not reach
	// each other. The bridge's traffic is let through while it lives.
	if _, err := exec.LookPath("iptables"); err == nil {
		rule := []string{"FORWARD", "-i", b.Name, "-j", "ACCEPT"}
		if exec.Command("iptables", append([]string{"-I"}, rule...)...).Run() == nil {
			t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
		}
	}
	for _, c := range [][]string{{"addr", "add", b.Gateway + "/24", "dev", b.Name}, {"link", "set", b.Name, "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	p, err := startAptProxy(b.Gateway, filepath.Join(CacheDir(), "apt"))
	if err != nil {
		t.Fatalf("apt proxy: %v", err)
	}
	t.Cleanup(p.close)
	b.proxy = p
	return b
}

// BootMachine boots one machine on a bridge of its own.
func BootMachine(t testing.TB) *Machine {
	t.Helper()
	return NewBridge(t).Boot(t)
}

// Boot starts a machine on the bridge and waits until its sshd answers;
// the machine is powered off and its files removed at the test's end.
func (b *Bridge) Boot(t testing.TB) *Machine {
	t.Helper()
	return b.BootFrom(t, Image(t))
}

// BootFrom boots a machine from the image in the folder lower (Image,
// FleetImage).
func (b *Bridge) BootFrom(t testing.TB, lower string) *Machine {
	t.Helper()
	return b.boot(t, lower, false)
}

// BootLending boots a machine from the machine image with folders of
// this machine lent at the same places in it, copy-on-write: the machine
// reads what they hold, and what it writes there stays in the machine.
// Lending a folder costs nothing, where a copy of it takes minutes.
func (b *Bridge) BootLending(t testing.TB, folders ...string) *Machine {
	t.Helper()
	return b.boot(t, Image(t), false, folders...)
}

// BootForDocker boots a machine from the machine image that can run a
// Docker daemon of its own once djship installs one: its
// /var/lib/docker is a folder of this machine's file system (overlay2
// cannot stack on the machine's overlay root), and systemd-nspawn lets
// it make cgroups, device filters (bpf) and key rings (keyctl) for its
// containers.
func (b *Bridge) BootForDocker(t testing.TB) *Machine {
	t.Helper()
	return b.boot(t, Image(t), true)
}

func (b *Bridge) boot(t testing.TB, lower string, docker bool, lent ...string) *Machine {
	t.Helper()
	keysOnce.Do(func() { keysErr = makeKeys() })
	if keysErr != nil {
		t.Fatalf("make test keys: %v", keysErr)
	}
	b.mu.Lock()
	b.next++
	n := b.next
	b.mu.Unlock()
	if n > 254 {
		t.Fatalf("bridge %s is full", b.Name)
	}
	m := &Machine{Name: fmt.Sprintf("djs%s-%d", strings.TrimPrefix(b.Name, "djsbr"), n), Addr: fmt.Sprintf("%s.%d", b.prefix, n), bridge: b, exited: make(chan struct{})}
	unlock := lockCreation(false)
	dir, err := os.MkdirTemp("", strings.TrimSuffix(machineDirPattern, "*"))
	if err == nil {
		// The folder names its owner, for the sweep of a later run.
		err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(thisProcess().String()), 0o644)
	}
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	m.dir, m.Root, m.Log = dir, filepath.Join(dir, "root"), filepath.Join(dir, "console.log")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o",
		fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, dir, dir), m.Root).CombinedOutput(); err != nil {
		t.Fatalf("mount the machine's overlay: %v: %s", err, out)
	}
	t.Cleanup(m.remove)
	if err := m.personalize(b); err != nil {
		t.Fatalf("machine %s: %v", m.Name, err)
	}
	if docker {
		lib := filepath.Join(dir, "docker")
		if err := os.Mkdir(lib, 0o711); err != nil {
			t.Fatal(err)
		}
		m.nspawnArgs = []string{"--bind=" + lib + ":/var/lib/docker", "--system-call-filter=add_key keyctl bpf", "--capability=all"}
	}
	for i, folder := range lent {
		upper := filepath.Join(dir, fmt.Sprintf("lent%d", i))
		if err := os.Mkdir(upper, 0o755); err != nil {
			t.Fatal(err)
		}
		// systemd-nspawn mounts the overlay on a folder the machine has.
		if err := os.MkdirAll(filepath.Join(m.Root, folder), 0o755); err != nil {
			t.Fatal(err)
		}
		m.nspawnArgs = append(m.nspawnArgs, "--overlay="+folder+":"+upper+":"+folder)
	}
	if err := m.boot(b); err != nil {
		console, _ := os.ReadFile(m.Log)
		t.Fatalf("boot machine %s: %v\nconsole:\n%s", m.Name, err, tail(console, 40))
	}
	return m
}

// personalize writes what makes this boot its own: host name, host key,
// the test user's key and the apt proxy.
func (m *Machine) personalize(b *Bridge) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if m.HostKey, err = ssh.NewPublicKey(pub); err != nil {
		return err
	}
	if err := writePrivateKey(filepath.Join(m.Root, "etc/ssh/ssh_host_djship_ed25519_key"), priv); err != nil {
		return err
	}
	authorized, err := os.ReadFile(filepath.Join(authDir, SudoUser))
	if err != nil {
		return err
	}
	uid, gid, err := m.ids(SudoUser)
	if err != nil {
		return err
	}
	sshDir := filepath.Join(m.Root, "home", SudoUser, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), authorized, 0o600); err != nil {
		return err
	}
	for _, p := range []string{sshDir, filepath.Join(sshDir, "authorized_keys")} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/hostname":                           m.Name + "\n",
		"etc/hosts":                              fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", m.Name),
		"etc/ssh/sshd_config.d/djship-test.conf": "HostKey /etc/ssh/ssh_host_djship_ed25519_key\nPasswordAuthentication no\n",
		"etc/apt/apt.conf.d/01djship-test-proxy": fmt.Sprintf("Acquire::http::Proxy \"http://%s\";\n", b.proxy.addr),
		// A machine lives for one test: dpkg need not flush every file it
		// unpacks to the disk, which machines installing side by side
		// share with every other test.
		"etc/dpkg/dpkg.cfg.d/djship-test-unsafe-io": "force-unsafe-io\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(m.Root, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	m.KnownHosts = filepath.Join(m.dir, "known_hosts")
	return os.WriteFile(m.KnownHosts, []byte(m.Addr+" "+string(ssh.MarshalAuthorizedKey(m.HostKey))), 0o644)
}

// ids reads a user's uid and gid from the machine's /etc/passwd.
func (m *Machine) ids(user string) (int, int, error) {
	data, err := os.ReadFile(filepath.Join(m.Root, "etc/passwd"))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err := errors.Join(err1, err2); err != nil {
				return 0, 0, fmt.Errorf("%s in /etc/passwd: %w", user, err)
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("no user %s in the image", user)
}

func (m *Machine) boot(b *Bridge) error {
	start := time.Now()
	log, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	m.cmd = exec.Command("systemd-nspawn", append([]string{"--directory=" + m.Root, "--boot", "--register=no", "--keep-unit",
		"--machine=" + m.Name, "--network-bridge=" + b.Name, "--console=passive"}, m.nspawnArgs...)...)
	// Without the unified hierarchy, systemd-nspawn fails on this
	// machine's cgroup layout.
	m.cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		return err
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	// The container's init is systemd-nspawn's child; its network
	// namespace gets the machine's address.
	// namespace gets the machine's address. (The first child is a
	// short-lived helper that starts it.)
	for {
		m.leader = m.init()
		if m.leader != 0 {
			if err := m.inNet("ip", "addr", "add", m.Addr+"/24", "dev", "host0"); err == nil {
				break
			}
		}
		if err := m.waitStep(deadline); err != nil {
			return fmt.Errorf("address for host0: %w", err)
		}
	}
	for _, c := range [][]string{{"ip", "link", "set", "lo", "up"}, {"ip", "link", "set", "host0", "up"}} {
		if err := m.inNet(c...); err != nil {
			return err
		}
	}
	addr := net.JoinHostPort(m.Addr, "22")
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			banner := make([]byte, 4)
			c.SetReadDeadline(time.Now().Add(time.Second))
			_, rerr := c.Read(banner)
			c.Close()
			if rerr == nil && string(banner) == "SSH-" {
				break
			}
		}
		if err := m.waitStep(deadline); err != nil {
			return fmt.Errorf("sshd on %s: %w", addr, err)
		}
	}
	m.BootTime = time.Since(start)
	return nil
}

// init finds the container's systemd: the child of systemd-nspawn that
// runs it.
func (m *Machine) init() int {
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(m.cmd.Process.Pid)).Output()
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
			return pid
		}
	}
	return 0
}

func (m *Machine) waitStep(deadline time.Time) error {
	select {
	case <-m.exited:
		return fmt.Errorf("systemd-nspawn exited: %v", m.cmd.ProcessState)
	case <-time.After(50 * time.Millisecond):
	}
	if time.Now().After(deadline) {
		return errors.New("timed out after 60 s")
	}
	return nil
}

func (m *Machine) inNet(args ...string) error {
	out, err := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(m.leader), "--net", "--"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Shell runs a shell script inside the machine as root and returns what
// it printed; the test fails if the script does.
func (m *Machine) Shell(t testing.TB, script string, args ...string) string {
	t.Helper()
	out, err := m.Exec(context.Background(), script, args...)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", m.Name, script, err, out)
	}
	return strings.TrimSpace(out)
}

// Exec runs a shell script inside the machine as root, in all of its
// namespaces, and returns its output and errors together.
func (m *Machine) Exec(ctx context.Context, script string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(m.leader),
		"--mount", "--uts", "--ipc", "--net", "--pid", "--", "/bin/sh", "-c", script, "sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// SSHAddr is the machine's sshd, host:port.
func (m *Machine) SSHAddr() string { return net.JoinHostPort(m.Addr, "22") }

// Reboot shuts the machine down cleanly and boots it again from the
// same files, as a host restarts: what systemd enabled comes back, what
// lived in /run does not.
func (m *Machine) Reboot(t testing.TB) {
	t.Helper()
	m.powerOff()
	m.exited, m.leader = make(chan struct{}), 0
	if err := m.boot(m.bridge); err != nil {
		console, _ := os.ReadFile(m.Log)
		t.Fatalf("reboot machine %s: %v\nconsole:\n%s", m.Name, err, tail(console, 40))
	}
}

// Kill cuts the machine's power: every process in it is killed at once
// (SIGKILL to its init ends its PID namespace), nothing is written back,
// and whoever talks to it over the network gets no answer. Its files
// stay for Start.
func (m *Machine) Kill(t testing.TB) {
	t.Helper()
	if m.leader != 0 {
		syscall.Kill(m.leader, syscall.SIGKILL)
	}
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// Start boots the machine again from its files after Kill, as a host
// that comes back after a power cut.
func (m *Machine) Start(t testing.TB) {
	t.Helper()
	m.exited, m.leader = make(chan struct{}), 0
	if err := m.boot(m.bridge); err != nil {
		console, _ := os.ReadFile(m.Log)
		t.Fatalf("start machine %s again: %v\nconsole:\n%s", m.Name, err, tail(console, 40))
	}
}

// powerOff shuts the machine down: systemd-nspawn passes SIGTERM on to
// its systemd as a clean shutdown.
func (m *Machine) powerOff() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// remove powers the machine off, then unmounts and removes its files.
func (m *Machine) remove() {
	m.powerOff()
	for i := 0; i < 50; i++ {
		if exec.Command("umount", m.Root).Run() == nil {
			break
		}
		if out, _ := exec.Command("findmnt", "-n", m.Root).Output(); len(out) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.RemoveAll(m.dir)
}

func tail(b []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// Forward makes the port on the machine's loopback reach the same port on
// this machine's loopback until the test ends: a registry on 127.0.0.1,
// which Docker trusts over plain HTTP, then has one address on both. The
// listening socket is made in the machine's network namespace; the
// connections it forwards are dialled from this machine's. (A reboot
// gives the machine a new namespace: forward again after one.)
func (m *Machine) Forward(t testing.TB, port int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := m.listenInNet(addr)
	if err != nil {
		t.Fatalf("forward %s on %s: %v", addr, m.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(in, out); in.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
}

// listenInNet listens on addr in the machine's network namespace. The
// goroutine's thread enters the namespace and is never unlocked, so Go
// ends that thread with the goroutine and no other code runs in it.
func (m *Machine) listenInNet(addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", m.leader), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		l, err := net.Listen("tcp", addr)
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}
