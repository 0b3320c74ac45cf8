package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
)

// TestHostShell runs commands of every kind through the two host shells
// of one connection (the login user's and root's) and checks that each
// gets what a session of its own would give: output, errors, exit code,
// signal, standard input, environment and folder, and that a process the
// command leaves behind does not hold the command's end back.
func TestHostShell(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	h := dial(t, sshOptions(t, sshd, nil))
	ctx := context.Background()
	big := make([]byte, 3<<20)
	rand.Read(big)
	sum := fmt.Sprintf("%x", sha256.Sum256(big))
	marker := filepath.Join(t.TempDir(), "left-behind")
	os.Chmod(filepath.Dir(marker), 0o777)

	cases := []struct {
		name    string
		c       Command
		stdout  string
		errText string
	}{
		{name: "login user", c: Command{Script: "id -un"}, stdout: testenv.SudoUser + "\n"},
		{name: "root", c: Command{Script: "id -un", Become: true}, stdout: "root\n"},
		{name: "standard input", c: Command{Script: "sha256sum | cut -d' ' -f1", Stdin: bytes.NewReader(big), Become: true}, stdout: sum + "\n"},
		{name: "large output", c: Command{Script: "head -c 3000000 /dev/zero | tr '\\0' x; echo"}, stdout: strings.Repeat("x", 3000000) + "\n"},
		{name: "exit code and errors", c: Command{Script: "echo out; echo 'it broke' >&2; exit 3", Become: true}, errText: "command exited with 3"},
		{name: "killed", c: Command{Script: "kill -KILL $$"}, errText: "command exited with 137"},
		{name: "environment and folder", c: Command{Script: `printf '%s %s\n' "$DJSHIP_WORD" "$(pwd)"`, Env: map[string]string{"DJSHIP_WORD": "a b'c"}, Dir: "/tmp", Become: true}, stdout: "a b'c /tmp\n"},
		{name: "output that looks like frames", c: Command{Script: `printf 'X 1\n0O 3\nabc'`, Become: true}, stdout: "X 1\n0O 3\nabc"},
		{name: "nothing of the shell's own", c: Command{Script: `ls /proc/$$/fd | sort -n | tr '\n' ' '`, Become: true}, stdout: "0 1 2 "},
		{name: "process left behind", c: Command{Script: Sh("sh", "-c", `(sleep 3; touch "$1") & echo started`, "x", marker)}, stdout: "started\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := h.Run(ctx, tc.c)
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("got %v, want an error with %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != tc.stdout {
				t.Errorf("stdout %.80q (%d bytes), want %.80q (%d bytes)", res.Stdout, len(res.Stdout), tc.stdout, len(tc.stdout))
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command waited for the process it left behind")
	}
	var exit *ExitError
	if _, err := h.Run(ctx, Command{Script: "echo 'it broke' >&2; exit 3", Become: true}); !errors.As(err, &exit) || exit.ExitCode != 3 || !strings.Contains(exit.Stderr, "it broke") {
		t.Errorf("got %#v, want an *ExitError with code 3 and stderr", err)
	}
	if n := h.Sessions(); n != 2 {
		t.Errorf("%d sessions for %d commands, want 2: one host shell for the login user, one for root", n, len(cases)+1)
	}
}

// TestHostShellsAtOnce runs commands from several goroutines on one
// connection: each gets its own output, and each shell started is used
// again.
func TestHostShellsAtOnce(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	h := dial(t, sshOptions(t, sshd, nil))
	const workers, each = 6, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				token := fmt.Sprintf("w%d-%d", w, i)
				res, err := h.Run(context.Background(), Command{Script: Sh("sh", "-c", `sleep 0.0$2; echo "$1"`, "x", token, fmt.Sprint(i%3)), Become: w%2 == 0})
				if err == nil && string(res.Stdout) != token+"\n" {
					err = fmt.Errorf("command %s got %q", token, res.Stdout)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.Sessions(); n > workers*each/2 {
		t.Errorf("%d sessions for %d commands in %d goroutines: shells were not used again", n, workers*each, workers)
	}
	h.shells.mu.Lock()
	idle := len(h.shells.idle[true]) + len(h.shells.idle[false])
	h.shells.mu.Unlock()
	if idle > 2*idleShells {
		t.Errorf("%d idle shells kept, want at most %d", idle, 2*idleShells)
	}
}

// TestWithoutHostShell runs commands where no host shell starts (no
// perl on the host) and where the site asks for a session per command:
// each runs in a session of its own, with the same results.
func TestWithoutHostShell(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	cases := []struct {
		name         string
		perSession   bool
		program      string
		wantSessions int
	}{
		// Each kind tries a shell once, then runs commands in sessions.
		{name: "no perl", program: "djship-no-such-perl", wantSessions: 2 + 4},
		{name: "session per command", perSession: true, wantSessions: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := sshOptions(t, sshd, nil)
			opts.SessionPerCommand = tc.perSession
			h := dial(t, opts)
			if tc.program != "" {
				h.shellProgram = tc.program
			}
			for i := range 4 {
				become := i%2 == 1
				want := map[bool]string{false: testenv.SudoUser, true: "root"}[become]
				res, err := h.Run(context.Background(), Command{Script: "id -un", Become: become})
				if err != nil || strings.TrimSpace(string(res.Stdout)) != want {
					t.Fatalf("command %d: got %q, %v; want %s", i, res.Stdout, err, want)
				}
			}
			if n := h.Sessions(); n != tc.wantSessions {
				t.Errorf("%d sessions, want %d", n, tc.wantSessions)
			}
		})
	}
}

// BenchmarkCommandRoundTrips runs 20 small commands as root over one
// connection through a proxy that delays each direction (0 and 25 ms),
// in a host shell and in a session per command, and reports how many
// round trips one command waits for in each:
//
//	go test -run '^$' -bench CommandRoundTrips -benchtime 3x ./remote
func BenchmarkCommandRoundTrips(b *testing.B) {
	sshd := testenv.StartSSHD(b)
	b.Setenv("SSH_AUTH_SOCK", "")
	const commands, delay = 20, 25 * time.Millisecond
	times := map[string]map[time.Duration]time.Duration{}
	for _, perSession := range []bool{false, true} {
		kind := map[bool]string{false: "shell", true: "session"}[perSession]
		times[kind] = map[time.Duration]time.Duration{}
		for _, d := range []time.Duration{0, delay} {
			proxy := testenv.StartDelayProxy(b, sshd.Addr(), d)
			opts := SSHOptions{Address: "127.0.0.1", User: testenv.SudoUser, Port: proxy.Port, IdentityFiles: []string{testenv.TestKeys().Sudo},
				UserKnownHosts: proxy.KnownHosts(b, sshd), ConfigFile: "none", SessionPerCommand: perSession}
			h, err := DialSSH(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			// The first command starts the shell.
			if _, err := h.Run(context.Background(), Command{Script: "true", Become: true}); err != nil {
				b.Fatal(err)
			}
			for range b.N {
				start := time.Now()
				for i := range commands {
					if _, err := h.Run(context.Background(), Command{Script: Sh("echo", fmt.Sprint(i)), Become: true, Quiet: true}); err != nil {
						b.Fatal(err)
					}
				}
				times[kind][d] += time.Since(start)
			}
			h.Close()
		}
	}
	for kind, t := range times {
		added := (t[delay] - t[0]) / time.Duration(b.N*commands)
		b.ReportMetric(added.Seconds()/(2*delay).Seconds(), kind+"-round-trips/command")
		b.ReportMetric(float64(t[0].Microseconds())/1000/float64(b.N*commands), kind+"-ms/command-at-0ms")
	}
}
