package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestMachinesSideBySide boots two machines on one bridge and checks
// what the tests rely on: systemd is PID 1, sshd answers the test user's
// key with the host key of this boot, sudo needs no password, each
// machine has its own address and port 80, and apt reaches Debian's
// mirror through the proxy alone.
func TestMachinesSideBySide(t *testing.T) {
	NeedMachines(t)
	start := time.Now()
	Image(t)
	t.Logf("image %s ready in %s (cached at %s)", ImageKey(), time.Since(start).Round(time.Millisecond), CacheDir())
	b := NewBridge(t)
	machines := []*Machine{b.Boot(t), b.Boot(t)}
	for _, m := range machines {
		t.Logf("%s at %s booted in %s", m.Name, m.Addr, m.BootTime.Round(time.Millisecond))
		if got := m.Shell(t, "systemctl is-system-running --wait || true"); got != "running" && got != "degraded" {
			t.Errorf("%s: systemd is %q", m.Name, got)
		}
		if got := m.Shell(t, "cat /proc/1/comm"); got != "systemd" {
			t.Errorf("%s: PID 1 is %q", m.Name, got)
		}
		out := sshRun(t, m, "hostname; sudo -n id -u")
		if want := m.Name + "\n0\n"; out != want {
			t.Errorf("%s: ssh said %q, want %q", m.Name, out, want)
		}
	}
	// Port 80 of one machine is not the other's.
	machines[0].Shell(t, "nohup python3 -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1 &")
	machines[1].Shell(t, "nohup python3 -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1 &")
	for _, m := range machines {
		var err error
		for i := 0; i < 50; i++ {
			if err = exec.Command("curl", "-sf", "-o", "/dev/null", fmt.Sprintf("http://%s/", m.Addr)).Run(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("%s: port 80 does not answer: %v", m.Name, err)
		}
	}
	// The outside is reachable only through the proxy, and only the mirror.
	if out, err := machines[0].Exec(context.Background(), "python3 -c 'import urllib.request; urllib.request.urlopen(\"http://example.org/\", timeout=3)'"); err == nil {
		t.Errorf("a machine reached example.org directly: %s", out)
	}
	out := machines[0].Shell(t, "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends hello >/dev/null 2>&1 && hello")
	if out != "Hello, world!" {
		t.Errorf("hello from apt printed %q", out)
	}
	if got := machines[1].Shell(t, "command -v hello || echo none"); got != "none" {
		t.Errorf("what one machine installed is on the other: %s", got)
	}
}

func sshRun(t *testing.T, m *Machine, cmd string) string {
	t.Helper()
	signer := mustSigner(t, TestKeys().Sudo)
	hostKeys, err := knownhosts.New(m.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", m.SSHAddr(), &ssh.ClientConfig{User: SudoUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys, HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("ssh to %s: %v", m.Name, err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", m.Name, cmd, err, out)
	}
	return strings.ReplaceAll(string(out), "\r", "")
}

func mustSigner(t *testing.T, keyFile string) ssh.Signer {
	t.Helper()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
