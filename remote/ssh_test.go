package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"golang.org/x/crypto/ssh"
)

func TestOneConnectionPerHost(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	h := dial(t, sshOptions(t, sshd, nil))
	ctx := context.Background()
	dir := tempDirOn(t, h)
	for i := 0; i < 20; i++ {
		if _, err := h.Run(ctx, Command{Script: Sh("echo", fmt.Sprint(i)), Quiet: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Upload(ctx, Upload{Path: filepath.Join(dir, fmt.Sprint(i%3)), Data: []byte(fmt.Sprint(i)), Mode: 0o644, Become: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := sshd.Accepted(t); n != 1 {
		t.Errorf("sshd accepted %d connections for 20 commands and 20 uploads, want 1", n)
	}
}

func TestLargeUploadAndSkip(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	h := dial(t, sshOptions(t, sshd, nil))
	ctx := context.Background()
	data := make([]byte, 50<<20)
	rand.Read(data)
	local := filepath.Join(t.TempDir(), "big.tar.gz")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tempDirOn(t, h), "big.tar.gz")
	u := Upload{Path: dest, LocalPath: local, Mode: 0o644, Become: true}
	start := time.Now()
	changed, err := h.Upload(ctx, u)
	if err != nil || !changed {
		t.Fatalf("upload: changed=%v, %v", changed, err)
	}
	t.Logf("50 MB upload: %v", time.Since(start).Round(time.Millisecond))
	sum := sha256.Sum256(data)
	res, err := h.Run(ctx, Command{Script: Sh("sha256sum", "--", dest), Quiet: true, Become: true})
	if err != nil || !strings.HasPrefix(string(res.Stdout), hex.EncodeToString(sum[:])) {
		t.Errorf("remote checksum %q, %v; want %x", res.Stdout, err, sum)
	}
	start = time.Now()
	if changed, err := h.Upload(ctx, u); err != nil || changed {
		t.Errorf("second upload: changed=%v, %v; want skipped", changed, err)
	}
	t.Logf("skipped upload: %v", time.Since(start).Round(time.Millisecond))

	// An upload cut off halfway leaves the old file whole and no
	// temporary file beside it.
	rand.Read(data[:1024])
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := h.Upload(cctx, u); err == nil {
		t.Fatal("a cancelled upload succeeded")
	}
	res, err = h.Run(ctx, Command{Script: Sh("sha256sum", "--", dest), Quiet: true, Become: true})
	if err != nil || !strings.HasPrefix(string(res.Stdout), hex.EncodeToString(sum[:])) {
		t.Errorf("after a failed upload the file changed: %q, %v", res.Stdout, err)
	}
	if left := leftovers(t, h, filepath.Dir(dest)); left != "" {
		t.Errorf("a failed upload left %s", left)
	}
}

func TestHostKeys(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	ctx := context.Background()

	t.Run("unknown host refused", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.UserKnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		_, err := DialSSH(ctx, opts)
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Changed {
			t.Fatalf("got %v, want an unknown-host error", err)
		}
		fingerprint := ssh.FingerprintSHA256(sshd.HostKey)
		for _, want := range []string{"unknown host key for [127.0.0.1]:" + fmt.Sprint(sshd.Port), fingerprint, fmt.Sprintf("ssh-keyscan -p %d -t ed25519 127.0.0.1", sshd.Port), "DJSHIP_TRUST_NEW_HOSTS=1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message lacks %q:\n%v", want, err)
			}
		}
	})
	t.Run("changed key refused", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		other, _ := ssh.NewPublicKey(pub)
		known := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", sshd.Port, ssh.MarshalAuthorizedKey(other))), 0o600)
		opts := sshOptions(t, sshd, nil)
		opts.UserKnownHosts = known
		opts.TrustNewHosts = true // never overrides a changed key
		_, err := DialSSH(ctx, opts)
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed || !strings.Contains(err.Error(), "HOST KEY CHANGED") || !strings.Contains(err.Error(), "ssh-keygen -R") {
			t.Fatalf("got %v, want a changed-key refusal", err)
		}
	})
	t.Run("trusting new hosts is an opt-in", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.UserKnownHosts = filepath.Join(t.TempDir(), ".ssh", "known_hosts")
		opts.TrustNewHosts = true
		h, err := DialSSH(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		recorded, _ := os.ReadFile(opts.UserKnownHosts)
		if !strings.Contains(string(recorded), fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", sshd.Port)) {
			t.Errorf("known_hosts after trusting: %q", recorded)
		}
		opts.TrustNewHosts = false
		h, err = DialSSH(ctx, opts)
		if err != nil {
			t.Fatalf("the recorded key is not trusted next time: %v", err)
		}
		h.Close()
	})
	t.Run("site known_hosts", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.UserKnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		opts.KnownHosts = []string{sshd.KnownHosts}
		h, err := DialSSH(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
	})
}

func TestLoginErrors(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	ctx := context.Background()
	t.Run("wrong key", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.IdentityFiles = []string{testenv.TestKeys().Stranger}
		_, err := DialSSH(ctx, opts)
		if err == nil || !strings.Contains(err.Error(), `refused the login of "djship-test"`) || !strings.Contains(err.Error(), "authorized_keys") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.Port = 1
		_, err := DialSSH(ctx, opts)
		if err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("sudo wants a password", func(t *testing.T) {
		opts := sshOptions(t, sshd, nil)
		opts.User = testenv.PasswordSudoUser
		opts.IdentityFiles = []string{testenv.TestKeys().PasswordSudo}
		h := dial(t, opts)
		if _, err := h.Run(ctx, Command{Script: "id -u"}); err != nil {
			t.Fatalf("a plain command failed: %v", err)
		}
		_, err := h.Run(ctx, Command{Script: "id -u", Become: true})
		if !errors.Is(err, ErrSudoPassword) || !strings.Contains(err.Error(), testenv.PasswordSudoUser+" ALL=(root) NOPASSWD: ALL") {
			t.Errorf("got %v", err)
		}
	})
}

func TestSSHConfigAlias(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	config := filepath.Join(t.TempDir(), "config")
	os.WriteFile(config, []byte(fmt.Sprintf("Host web1\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n", sshd.Port, testenv.SudoUser, testenv.TestKeys().Sudo)), 0o600)
	t.Setenv("SSH_AUTH_SOCK", "")
	h, err := DialSSH(context.Background(), SSHOptions{Address: "web1", ConfigFile: config, UserKnownHosts: sshd.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	res, err := h.Run(context.Background(), Command{Script: "id -un", Quiet: true})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != testenv.SudoUser {
		t.Errorf("got %q, %v", res.Stdout, err)
	}
}

func TestProxyJump(t *testing.T) {
	target := testenv.StartSSHD(t)
	bastion := testenv.StartSSHD(t)
	known := filepath.Join(t.TempDir(), "known_hosts")
	a, _ := os.ReadFile(target.KnownHosts)
	b, _ := os.ReadFile(bastion.KnownHosts)
	os.WriteFile(known, append(a, b...), 0o600)
	opts := sshOptions(t, target, nil)
	opts.UserKnownHosts = known
	opts.ProxyJump = fmt.Sprintf("%s@127.0.0.1:%d", testenv.SudoUser, bastion.Port)
	h := dial(t, opts)
	if _, err := h.Run(context.Background(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	// The only login to the bastion is the hop: nothing else connects to it.
	if n, m := bastion.Accepted(t), target.Accepted(t); n != 1 || m != 1 {
		t.Errorf("bastion accepted %d logins and the target %d, want 1 each", n, m)
	}
}

func TestConnectionDroppedMidCommand(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	h := dial(t, sshOptions(t, sshd, nil))
	time.AfterFunc(700*time.Millisecond, func() {
		for _, pid := range sshd.SessionProcesses(t) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	start := time.Now()
	_, err := h.Run(context.Background(), Command{Script: "sleep 30"})
	if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "outcome on the host is unknown") {
		t.Errorf("got %v, want a lost-connection error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("noticing the dropped connection took %v", d)
	}
	// The host can be reached again: Reconnect gives the same host a new
	// connection, on which commands and uploads work.
	if err := h.Reconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Run(context.Background(), Command{Script: "echo back"}); err != nil || string(res.Stdout) != "back\n" {
		t.Errorf("after reconnecting: %q %v", res.Stdout, err)
	}
	dir := tempDirOn(t, h)
	if _, err := h.Upload(context.Background(), Upload{Path: dir + "/f", Data: []byte("x"), Mode: 0o600, Become: true}); err != nil {
		t.Errorf("an upload after reconnecting: %v", err)
	}
	// A host that no longer answers: Reconnect gives up after its tries.
	reconnectWaits = []time.Duration{0, 10 * time.Millisecond}
	defer func() { reconnectWaits = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second} }()
	sshd.Stop()
	if err := h.Reconnect(context.Background()); err == nil || !strings.Contains(err.Error(), "reconnecting, 2 attempts") {
		t.Errorf("reconnecting to a stopped sshd: %v", err)
	}
}

func TestOutputIsPrefixedAndRedacted(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	var buf syncBuffer
	redactor := &Redactor{}
	secret := "s3cr3t-Value-42"
	redactor.Add(secret)
	h := dial(t, sshOptions(t, sshd, NewOutput(&buf, redactor)))
	_, err := h.Run(context.Background(), Command{
		Script: `read v; echo "value is $v"; echo "err: $v" >&2; exit 4`,
		Stdin:  strings.NewReader(secret + "\n"),
	})
	if err == nil {
		t.Fatal("want the exit error")
	}
	out := buf.String()
	if strings.Contains(out, secret) || strings.Contains(err.Error(), secret) {
		t.Errorf("the secret leaked:\noutput: %s\nerror: %v", out, err)
	}
	prefix := fmt.Sprintf("[%s@127.0.0.1:%d] ", testenv.SudoUser, sshd.Port)
	if !strings.Contains(out, prefix+"value is <redacted>") || !strings.Contains(err.Error(), "err: <redacted>") {
		t.Errorf("output %q\nerror %v", out, err)
	}
}

func TestEachLimitsConcurrency(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	var hosts []Host
	for i := 0; i < 5; i++ {
		hosts = append(hosts, dial(t, sshOptions(t, sshd, nil)))
	}
	var running, peak atomic.Int32
	results := Each(context.Background(), hosts, 2, func(ctx context.Context, h Host) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		_, err := h.Run(ctx, Command{Script: "sleep 0.2", Quiet: true})
		if h == hosts[3] {
			return errors.New("host 3 fails")
		}
		return err
	})
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
	for i, r := range results {
		if r.Host != hosts[i].Name() || (i == 3) != (r.Err != nil) {
			t.Errorf("result %d = %+v", i, r)
		}
	}
}

func TestEncryptedKeyAsksForPassphrase(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	raw, _ := os.ReadFile(testenv.TestKeys().Sudo)
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(t.TempDir(), "id_ed25519")
	os.WriteFile(encrypted, pem.EncodeToMemory(block), 0o600)
	opts := sshOptions(t, sshd, nil)
	opts.IdentityFiles = []string{encrypted}
	asked := ""
	opts.Passphrase = func(file string) ([]byte, error) { asked = file; return []byte("correct horse"), nil }
	h := dial(t, opts)
	if asked != encrypted {
		t.Errorf("passphrase asked for %q, want %q", asked, encrypted)
	}
	if _, err := h.Run(context.Background(), Command{Script: "true"}); err != nil {
		t.Error(err)
	}
	opts.Passphrase = nil // no terminal here: the error says to use ssh-agent
	if _, err := DialSSH(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "ssh-add") {
		t.Errorf("without a terminal: %v", err)
	}
}
