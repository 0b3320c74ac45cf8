package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
)

// syncBuffer is an io.Writer safe for the concurrent writes of Output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sshOptions logs in to sshd as the passwordless-sudo test user, with
// nothing from the environment (no agent, no ~/.ssh).
func sshOptions(t *testing.T, sshd *testenv.SSHD, out *Output) SSHOptions {
	t.Setenv("SSH_AUTH_SOCK", "")
	return SSHOptions{
		Address:        "127.0.0.1",
		User:           testenv.SudoUser,
		Port:           sshd.Port,
		IdentityFiles:  []string{testenv.TestKeys().Sudo},
		UserKnownHosts: sshd.KnownHosts,
		ConfigFile:     "none",
		Output:         out,
	}
}

func dial(t *testing.T, opts SSHOptions) *SSH {
	t.Helper()
	h, err := DialSSH(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// hosts returns the two implementations that must behave the same: this
// machine, and the test user over SSH through a real sshd.
func hosts(t *testing.T) []Host {
	testenv.NeedRoot(t)
	sshd := testenv.StartSSHD(t)
	local := NewLocal(nil)
	t.Cleanup(func() { local.Close() })
	return []Host{local, dial(t, sshOptions(t, sshd, nil))}
}

// quotingCorpus holds values that break naive shell quoting.
var quotingCorpus = []string{
	"plain", "two words", "it's", `say "hi"`, "$(touch /tmp/djship-pwned)", "`id`", "${HOME}", "$HOME",
	"*", "?", "[a-z]*", "~", "-n", "--help", "a;b", "a&&b", "a|b", "a\nb\nc", "tab\there", "back\\slash",
	"'", "''", `"`, "\\", "ünïcødé ✓ 日本", "", " leading and trailing ", "!event", "#comment", "a\r\nb",
}

func TestBehaviour(t *testing.T) {
	for _, h := range hosts(t) {
		kind := "local"
		if _, ok := h.(*SSH); ok {
			kind = "ssh"
		}
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			run := func(c Command) (*Result, error) {
				t.Helper()
				return h.Run(ctx, c)
			}
			t.Run("stdout", func(t *testing.T) {
				res, err := run(Command{Script: "echo hello"})
				if err != nil || string(res.Stdout) != "hello\n" {
					t.Errorf("got %q, %v", res.Stdout, err)
				}
			})
			t.Run("one writer for a terminal's output and errors", func(t *testing.T) {
				// The host copies both streams at once; shared, one
				// bytes.Buffer lost or zeroed what they wrote.
				for _, tty := range []bool{false, true} {
					for i := 0; i < 40; i++ {
						var both bytes.Buffer
						term := &Terminal{In: strings.NewReader(""), Out: &both, Err: &both, TTY: tty}
						if _, err := run(Command{Script: "echo to-out; echo to-err >&2", Terminal: term}); err != nil {
							t.Fatal(err)
						}
						if got := both.String(); !strings.Contains(got, "to-out") || !strings.Contains(got, "to-err") {
							t.Fatalf("tty %v, run %d: the shared writer got %q", tty, i, got)
						}
					}
				}
			})
			t.Run("exit code and stderr", func(t *testing.T) {
				_, err := run(Command{Script: "echo first >&2; echo 'it broke' >&2; exit 3"})
				var exit *ExitError
				if !errors.As(err, &exit) || exit.ExitCode != 3 || !strings.Contains(err.Error(), "it broke") {
					t.Errorf("got %v", err)
				}
			})
			t.Run("stdin", func(t *testing.T) {
				in := strings.Repeat("line of input\n", 1000)
				res, err := run(Command{Script: "cat", Stdin: strings.NewReader(in)})
				if err != nil || string(res.Stdout) != in {
					t.Errorf("stdin came back as %d bytes, %v", len(res.Stdout), err)
				}
			})
			t.Run("env and dir", func(t *testing.T) {
				res, err := run(Command{Script: `printf '%s|' "$GREETING" "$(pwd)"`, Env: map[string]string{"GREETING": "a 'b' $c"}, Dir: "/usr/share"})
				if err != nil || string(res.Stdout) != "a 'b' $c|/usr/share|" {
					t.Errorf("got %q, %v", res.Stdout, err)
				}
			})
			t.Run("become", func(t *testing.T) {
				res, err := run(Command{Script: "id -u", Become: true})
				if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
					t.Errorf("got %q, %v", res.Stdout, err)
				}
			})
			t.Run("quoting corpus", func(t *testing.T) {
				for _, v := range quotingCorpus {
					res, err := run(Command{Script: Sh("printf", "%s", v), Quiet: true})
					if err != nil || string(res.Stdout) != v {
						t.Errorf("argument %q came back as %q, %v", v, res.Stdout, err)
					}
					res, err = run(Command{Script: `printf %s "$V"`, Env: map[string]string{"V": v}, Become: true, Quiet: true})
					if err != nil || string(res.Stdout) != v {
						t.Errorf("environment value %q came back as %q, %v", v, res.Stdout, err)
					}
				}
				if _, err := os.Stat("/tmp/djship-pwned"); err == nil {
					t.Error("a quoted value ran a command")
				}
			})
			t.Run("NUL refused", func(t *testing.T) {
				if _, err := run(Command{Script: Sh("printf", "a\x00b")}); err == nil || !strings.Contains(err.Error(), "NUL") {
					t.Errorf("got %v", err)
				}
			})
			t.Run("upload", func(t *testing.T) {
				dir := tempDirOn(t, h)
				dest := filepath.Join(dir, "secret file.env")
				u := Upload{Path: dest, Data: []byte("KEY=value\n"), Mode: 0o640, Owner: "root", Group: testenv.SudoUser, Become: true}
				changed, err := h.Upload(ctx, u)
				if err != nil || !changed {
					t.Fatalf("first upload: changed=%v, %v", changed, err)
				}
				if got := statOn(t, h, dest); got != "640 root "+testenv.SudoUser {
					t.Errorf("mode and owner = %q", got)
				}
				if changed, err := h.Upload(ctx, u); err != nil || changed {
					t.Errorf("same upload again: changed=%v, %v; want unchanged", changed, err)
				}
				u.Mode = 0o600
				if changed, err := h.Upload(ctx, u); err != nil || !changed {
					t.Errorf("new mode: changed=%v, %v; want changed", changed, err)
				}
				u.Data = []byte("KEY=other\n")
				if changed, err := h.Upload(ctx, u); err != nil || !changed {
					t.Errorf("new content: changed=%v, %v; want changed", changed, err)
				}
				data, err := h.ReadFile(ctx, dest, true)
				if err != nil || string(data) != "KEY=other\n" {
					t.Errorf("read back %q, %v", data, err)
				}
				if left := leftovers(t, h, dir); left != "" {
					t.Errorf("temporary files left next to the destination: %s", left)
				}
			})
			t.Run("timeout", func(t *testing.T) {
				start := time.Now()
				_, err := run(Command{Script: "sleep 20", Timeout: 300 * time.Millisecond})
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want a deadline error", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("timeout took %v", d)
				}
			})
			t.Run("cancel", func(t *testing.T) {
				token := fmt.Sprintf("djship-cancel-%d", time.Now().UnixNano())
				marker := filepath.Join(os.TempDir(), token)
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(500*time.Millisecond, cancel)
				start := time.Now()
				_, err := h.Run(ctx, Command{Script: Sh("sh", "-c", "sleep 30; touch \"$1\"", token, marker), Become: true})
				if !errors.Is(err, context.Canceled) {
					t.Errorf("got %v, want context.Canceled", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("cancel took %v to return", d)
				}
				time.Sleep(300 * time.Millisecond)
				if out, _ := exec.Command("pgrep", "-f", token).Output(); len(out) > 0 {
					t.Errorf("the cancelled command is still running: pids %s", out)
					exec.Command("pkill", "-f", token).Run()
				}
				if _, err := os.Stat(marker); err == nil {
					t.Error("the cancelled command ran to its end")
				}
			})
		})
	}
}

// tempDirOn makes a folder on the host, removed at the test's end.
func tempDirOn(t *testing.T, h Host) string {
	t.Helper()
	res, err := h.Run(context.Background(), Command{Script: "mktemp -d /tmp/djship-test-XXXXXX", Become: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSpace(string(res.Stdout))
	t.Cleanup(func() {
		h.Run(context.Background(), Command{Script: Sh("rm", "-rf", "--", dir), Become: true, Quiet: true})
	})
	return dir
}

func statOn(t *testing.T, h Host, p string) string {
	t.Helper()
	res, err := h.Run(context.Background(), Command{Script: Sh("stat", "-c", "%a %U %G", "--", p), Become: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func leftovers(t *testing.T, h Host, dir string) string {
	t.Helper()
	res, err := h.Run(context.Background(), Command{Script: Sh("find", dir, "-name", "*.djship-*"), Become: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func TestQuote(t *testing.T) {
	tests := map[string]string{
		"plain":   "plain",
		"":        "''",
		"a b":     "'a b'",
		"it's":    `'it'"'"'s'`,
		"$(x)":    "'$(x)'",
		"/a/b.py": "/a/b.py",
	}
	for in, want := range tests {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRedactor(t *testing.T) {
	var r Redactor
	r.Add("hunter2-long", "abc", "multi\nline-secret")
	got := r.Redact("password=hunter2-long; short abc stays; line-secret; multi")
	want := "password=<redacted>; short <redacted> stays; <redacted>; <redacted>"
	if got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	var none *Redactor
	if none.Redact("x") != "x" {
		t.Error("a nil Redactor must pass text through")
	}
}

func TestRedactError(t *testing.T) {
	r := &Redactor{}
	r.Add("hunter2-long")
	base := &ExitError{Host: "h", Script: "x", ExitCode: 2, Stderr: "bad password hunter2-long"}
	err := r.RedactError(fmt.Errorf("step: %w", base))
	var exit *ExitError
	if strings.Contains(err.Error(), "hunter2-long") || !errors.As(err, &exit) || exit.ExitCode != 2 {
		t.Errorf("got %q, As=%v", err, errors.As(err, &exit))
	}
}
