package remote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// watcher is a program that, as an unprivileged user, opens every file
// that appears in a folder, again and again, until its standard input
// closes; then it prints how many it could open and how many bytes it
// read.
const watcher = `
import os, select, sys
folder, opened, got = sys.argv[1], 0, 0
while not select.select([sys.stdin], [], [], 0)[0]:
    try:
        names = os.listdir(folder)
    except OSError:
        continue
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                opened += 1
                got += len(f.read())
        except OSError:
            pass
print(opened, got, flush=True)
`

// watch starts the watcher as nobody on folder; stop ends it and returns
// how many files it opened and how many bytes it read.
func watch(t *testing.T, folder string) (stop func() (opened, read int)) {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, python, "apt-get install python3")
	}
	runuser := testenv.Command(t, "runuser", "util-linux")
	cmd := exec.Command(runuser, "-u", "nobody", "--", python, "-c", watcher, folder)
	cmd.Dir = "/"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopWatcher := func() (int, int) {
		if stopped {
			return 0, 0
		}
		stopped = true
		stdin.Close()
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("watcher: %v\n%s", err, stderr.String())
		}
		var opened, read int
		if _, err := fmt.Sscan(line, &opened, &read); err != nil {
			t.Fatalf("watcher said %q: %v\n%s", line, err, stderr.String())
		}
		return opened, read
	}
	t.Cleanup(func() { stopWatcher() })
	return stopWatcher
}

// A secret file is readable by its final owner and group alone, at every
// moment of its upload: an unprivileged user watching the destination
// folder, as a web server's TLS key folder is open to all, never opens it
// nor reads a byte of it.
func TestUploadNeverExposesSecret(t *testing.T) {
	eachHost(t, func(t *testing.T, h Host) {
		ctx := context.Background()
		dir := tempDirOn(t, h)
		if _, err := h.Run(ctx, Command{Script: Sh("chmod", "0755", "--", dir), Become: true, Quiet: true}); err != nil {
			t.Fatal(err)
		}
		stop := watch(t, dir)
		dest := path.Join(dir, "site.key")
		for i := 0; i < 60; i++ {
			u := Upload{
				Path:  dest,
				Data:  []byte(fmt.Sprintf("-----BEGIN PRIVATE KEY-----\nsecret number %d %s\n-----END PRIVATE KEY-----\n", i, strings.Repeat("k", 4000))),
				Mode:  0o640,
				Owner: "root",
				Group: testenv.SudoUser,
				// The watcher is not in this group.
				Become: true,
			}
			if changed, err := h.Upload(ctx, u); err != nil || !changed {
				t.Fatalf("upload %d: changed=%v, %v", i, changed, err)
			}
		}
		opened, read := stop()
		if opened > 0 || read > 0 {
			t.Errorf("nobody opened %d files in %s during the uploads and read %d bytes of the secret", opened, dir, read)
		}
		if got := statOn(t, h, dest); got != "640 root "+testenv.SudoUser {
			t.Errorf("mode and owner = %q", got)
		}
	})
}

// A staged upload waits in a folder and a file only the login user can
// read.
func TestStagedUploadIsPrivate(t *testing.T) {
	eachHost(t, func(t *testing.T, h Host) {
		ctx := context.Background()
		staged, cleanup, err := h.(runner).stage(ctx, strings.NewReader("secret"))
		if err != nil {
			t.Fatal(err)
		}
		defer cleanup()
		res, err := h.Run(ctx, Command{Script: "id -un", Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		login := strings.TrimSpace(string(res.Stdout))
		for p, want := range map[string]string{staged: "600 " + login, path.Dir(staged): "700 " + login} {
			res, err := h.Run(ctx, Command{Script: Sh("stat", "-c", "%a %U", "--", p), Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != want {
				t.Errorf("%s: mode and owner %q, want %q", p, got, want)
			}
		}
	})
}

// eachHost runs f as a subtest on this machine and on the test user over
// SSH through a real sshd, which starts only when its subtest runs (so
// that -run 'Test…/local' needs no sshd).
func eachHost(t *testing.T, f func(t *testing.T, h Host)) {
	testenv.NeedRoot(t)
	t.Run("local", func(t *testing.T) {
		local := NewLocal(nil)
		t.Cleanup(func() { local.Close() })
		f(t, local)
	})
	t.Run("ssh", func(t *testing.T) {
		sshd := testenv.StartSSHD(t)
		f(t, dial(t, sshOptions(t, sshd, nil)))
	})
}
