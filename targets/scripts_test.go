package targets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

func TestShScriptPassesDataAsArguments(t *testing.T) {
	sh := testenv.Command(t, "sh", "dash")
	marker := filepath.Join(t.TempDir(), "ran")
	for _, value := range []string{"$(touch " + marker + ")", "a'b\"c", "two\nlines", "; touch " + marker, "`touch " + marker + "`", "-n", "%s %d"} {
		log := filepath.Join(t.TempDir(), "deploy.log")
		if out, err := exec.Command(sh, "-c", shScript("append-log", log, value)).CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", value, err, out)
		}
		got, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != value+"\n" {
			t.Errorf("append-log wrote %q, want %q", got, value+"\n")
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an argument ran as a command")
	}
}

// TestLogTail checks what a failure shows of the application server's
// log: the last traceback up to its exception, at most 20 lines, and no
// request lines.
func TestLogTail(t *testing.T) {
	sh := testenv.Command(t, "sh", "dash")
	frames := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "  File \"frame%d.py\", line %d, in f\n    f()\n", i, i)
		}
		return b.String()
	}
	access := `127.0.0.1 - - [01/Dec/2026:10:00:00 +0000] "GET /notes/ HTTP/1.0" 200 512 "-" "curl"` + "\n" +
		"[pid: 12|app: 0|req: 1/1] 127.0.0.1 () {40 vars in 500 bytes} [Tue Dec  1 10:00:00 2026] GET / => generated 10 bytes\n"
	cases := []struct {
		name, log     string
		want, notWant []string
		maxLines      int
	}{
		{"short traceback", "starting\nTraceback (most recent call last)\n" + frames(2) + "ValueError: bad\n" + access,
			[]string{"Traceback", "frame2.py", "ValueError: bad"}, []string{"GET /", "starting"}, 7},
		{"the last of two", "Traceback (most recent call last)\n" + frames(1) + "KeyError: first\n" + access + "Traceback (most recent call last)\n" + frames(1) + "ImportError: second\n",
			[]string{"ImportError: second"}, []string{"KeyError: first"}, 4},
		{"long traceback keeps its end", "Traceback (most recent call last)\n" + frames(30) + "ImportError: deep\n[INFO] Worker exiting\n",
			[]string{"Traceback", "lines left out", "frame30.py", "ImportError: deep"}, []string{"frame1.py", "Worker exiting"}, 20},
		{"no traceback", access + "one\ntwo\n", []string{"one", "two"}, []string{"GET /"}, 2},
		{"no log", "", nil, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "app.log")
			if c.log != "" {
				os.WriteFile(log, []byte(c.log), 0o644)
			}
			out, err := exec.Command(sh, "-c", shScript("log-tail", log)).Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			got := strings.TrimSuffix(string(out), "\n")
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in:\n%s", w, got)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%q in:\n%s", w, got)
				}
			}
			if n := len(strings.Split(got, "\n")); got != "" && n > c.maxLines {
				t.Errorf("%d lines, want at most %d:\n%s", n, c.maxLines, got)
			}
		})
	}
}
