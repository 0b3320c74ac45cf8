package testenv

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Test users the harness creates, idempotently, on the machine.
const (
	// SudoUser may run anything through passwordless sudo.
	SudoUser = "djship-test"
	// PasswordSudoUser's sudo asks for a password, which djship cannot give.
	PasswordSudoUser = "djship-pwsudo"
)

// SSHD is a real OpenSSH server on a loopback port with throwaway keys.
type SSHD struct {
	// Port is the port it listens on, on 127.0.0.1.
	Port int
	// KnownHosts is a known_hosts file that lists its host key.
	KnownHosts string
	// HostKey is its public host key.
	HostKey ssh.PublicKey
	// Dir holds its configuration, keys and log.
	Dir string
	// Log is the server's log file (LogLevel VERBOSE).
	Log string
	cmd *exec.Cmd
}

// Keys are the private key files of the test users, valid on every SSHD
// this test process starts.
type Keys struct {
	// Sudo logs in as SudoUser.
	Sudo string
	// PasswordSudo logs in as PasswordSudoUser.
	PasswordSudo string
	// Stranger is a key no server accepts.
	Stranger string
}

var (
	usersOnce sync.Once
	usersErr  error
	keysOnce  sync.Once
	keys      Keys
	keysDir   string
	authDir   string
	keysErr   error
)

// NeedRoot stops the test (Missing) unless it runs as root, which creating
// users, sudoers entries and services needs.
func NeedRoot(t testing.TB) {
	t.Helper()
	EndToEnd(t)
	if os.Geteuid() != 0 {
		Missing(t, "root", "run the tests as root (CI does), since they create users and start services")
	}
}

// StartSSHD starts an OpenSSH server for the test and stops it at the
// test's end. It creates the test users and their keys on first use.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	NeedRoot(t)
	sshd := Command(t, "/usr/sbin/sshd", "openssh-server")
	Command(t, "sudo", "sudo")
	usersOnce.Do(func() { usersErr = createUsers() })
	if usersErr != nil {
		t.Fatalf("create test users: %v", usersErr)
	}
	keysOnce.Do(func() { keysErr = makeKeys() })
	if keysErr != nil {
		t.Fatalf("make test keys: %v", keysErr)
	}

	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	if err := writePrivateKey(hostKey, priv); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logFile := filepath.Join(dir, "sshd.log")
	config := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/%%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxSessions 200
MaxStartups 200
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, port, hostKey, dir, authDir)
	configFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-f", configFile, "-E", logFile)
	if out, err := exec.Command(sshd, "-t", "-f", configFile).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	s := &SSHD{Port: port, HostKey: sshPub, Dir: dir, Log: logFile, cmd: cmd}
	t.Cleanup(s.stop)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(sshPub))
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			t.Fatalf("sshd did not start on %s: %v\n%s", s.Addr(), err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// TestKeys returns the test users' key files (StartSSHD makes them).
func TestKeys() Keys { return keys }

// Addr is 127.0.0.1:port.
func (s *SSHD) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// PID is the listening server's process id.
func (s *SSHD) PID() int { return s.cmd.Process.Pid }

// Accepted counts the logins the server has accepted: one per connection.
func (s *SSHD) Accepted(t testing.TB) int {
	t.Helper()
	f, err := os.Open(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Accepted publickey for") {
			n++
		}
	}
	return n
}

// SessionProcesses lists the server processes that serve connections:
// every sshd process below the listening one (the privileged monitor and
// the login's own process of each connection).
func (s *SSHD) SessionProcesses(t testing.TB) []int {
	t.Helper()
	var pids []int
	queue := []int{s.PID()}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(parent)).Output()
		for _, f := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sshd" {
				pids = append(pids, pid)
				queue = append(queue, pid)
			}
		}
	}
	return pids
}

// Stop ends the server and its sessions before the test ends: the host
// no longer answers.
func (s *SSHD) Stop() { s.stop() }

func (s *SSHD) stop() {
	children, _ := exec.Command("pgrep", "-P", strconv.Itoa(s.PID())).Output()
	s.cmd.Process.Kill()
	s.cmd.Wait()
	for _, f := range strings.Fields(string(children)) {
		if pid, err := strconv.Atoi(f); err == nil {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// createUsers adds the test users (no password, so sshd accepts keys; a
// login shell) and their sudoers entries. Re-running changes nothing.
func createUsers() error {
	for _, u := range []string{SudoUser, PasswordSudoUser} {
		if exec.Command("id", "-u", u).Run() != nil {
			if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", u).CombinedOutput(); err != nil && !strings.Contains(string(out), "already exists") {
				return fmt.Errorf("useradd %s: %v: %s", u, err, out)
			}
		}
		// "*" is no password but not a locked account: sshd without PAM
		// refuses locked ones.
		if out, err := exec.Command("usermod", "-p", "*", u).CombinedOutput(); err != nil {
			return fmt.Errorf("usermod %s: %v: %s", u, err, out)
		}
	}
	sudoers := fmt.Sprintf("%s ALL=(ALL) NOPASSWD: ALL\n%s ALL=(ALL) ALL\n", SudoUser, PasswordSudoUser)
	if err := os.MkdirAll("/etc/sudoers.d", 0o755); err != nil {
		return err
	}
	return os.WriteFile("/etc/sudoers.d/djship-test", []byte(sudoers), 0o440)
}

// makeKeys writes one key per test user and a stranger's key, and the
// authorized_keys files every test sshd reads.
func makeKeys() error {
	var err error
	keysDir, err = os.MkdirTemp("", "djship-test-keys-")
	if err != nil {
		return err
	}
	authDir = filepath.Join(keysDir, "authorized")
	if err := os.MkdirAll(authDir, 0o755); err != nil {
		return err
	}
	os.Chmod(keysDir, 0o755)
	for _, k := range []struct {
		user string
		dest *string
	}{{SudoUser, &keys.Sudo}, {PasswordSudoUser, &keys.PasswordSudo}, {"", &keys.Stranger}} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		name := k.user
		if name == "" {
			name = "stranger"
		}
		*k.dest = filepath.Join(keysDir, name)
		if err := writePrivateKey(*k.dest, priv); err != nil {
			return err
		}
		if k.user == "" {
			continue
		}
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(authDir, k.user), ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writePrivateKey(p string, key ed25519.PrivateKey) error {
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return err
	}
	return os.WriteFile(p, pem.EncodeToMemory(block), 0o600)
}
