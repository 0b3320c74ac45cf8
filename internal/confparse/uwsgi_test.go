package confparse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

var uwsgiCases = []struct {
	name string
	in   string
	want []string
	// shown are the values uWSGI shows for the directives that expand,
	// in order; the file is named t.ini and HOME is /home/djship.
	shown []string
}{
	{
		name: "options of the uwsgi section",
		in:   "[uwsgi]\nchdir = /srv/www/shop/current/src\nmaster = true\n",
		want: []string{`2 uwsgi/chdir "/srv/www/shop/current/src"`, `3 uwsgi/master "true"`},
	},
	{
		name: "; and # after a value are part of it",
		in:   "[uwsgi]\nchdir = /srv ; not a comment # nor this\n",
		want: []string{`2 uwsgi/chdir "/srv ; not a comment # nor this"`},
	},
	{
		name: "comment lines, indented or not",
		in:   "[uwsgi]\n; chdir = /a\n  # chdir = /b\n\t;chdir = /c\nchdir = /d\n",
		want: []string{`5 uwsgi/chdir "/d"`},
	},
	{
		name: "a line without = is an option with an empty value",
		in:   "[uwsgi]\nmaster\nchdir = /d\n",
		want: []string{`2 uwsgi/master ""`, `3 uwsgi/chdir "/d"`},
	},
	{
		name: "spaces, tabs and CRs around keys and values",
		in:   "[uwsgi]\n \t chdir \t=\t /d \t\r\nmy key=  v\r\n",
		want: []string{`2 uwsgi/chdir "/d"`, `3 uwsgi/my key "v"`},
	},
	{
		name: "the value runs from the first =",
		in:   "[uwsgi]\nenv = A=B = C\n=empty key\n",
		want: []string{`2 uwsgi/env "A=B = C"`, `3 uwsgi/ "empty key"`},
	},
	{
		name: "a CR alone does not end a line",
		in:   "[uwsgi]\nchdir = /a\rmaster = true\n",
		want: []string{"2 uwsgi/chdir \"/a\\rmaster = true\""},
	},
	{
		name: "a NUL ends a line",
		in:   "[uwsgi]\nchdir = /a\x00\nmaster = true\n",
		want: []string{`2 uwsgi/chdir "/a"`, `3 uwsgi/master "true"`},
	},
	{
		name: "other sections and lines before any section",
		in:   "chdir = /before\n[other]\nchdir = /other\n[uwsgi]\nchdir = /mine\n[uwsgi\nchdir = /uwsg\n[uwsgi]x\nchdir = /x\n[uwsgi]\nmaster = true\n",
		want: []string{
			`1 chdir "/before"`,
			`3 other/chdir "/other"`,
			`5 uwsgi/chdir "/mine"`,
			`7 uwsg/chdir "/uwsg"`,
			`9 uwsgi]/chdir "/x"`,
			`11 uwsgi/master "true"`,
		},
	},
	{
		name: "%% is %, an unknown % letter disappears",
		in:   "[uwsgi]\nenv = A=100%% %z%y done\n",
		want: []string{`2 uwsgi/env "A=100%  done"`},
	},
	{
		name: "% before a newline joins the next line",
		in:   "[uwsgi]\nplugins = python3 %\nchdir = /injected\nmaster = true\n",
		want: []string{`2 uwsgi/plugins "python3 chdir = /injected"`, `4 uwsgi/master "true"`},
	},
	{
		name:  "magic variables expand",
		in:    "[uwsgi]\nenv = A=%n\nenv = B=%%n\nenv = C=%(\n",
		want:  []string{`2 uwsgi/env "A=%n" (expands)`, `3 uwsgi/env "B=%n"`, `4 uwsgi/env "C=%("`},
		shown: []string{"A=t"},
	},
	{
		name:  "option references expand, even written %%(",
		in:    "[uwsgi]\nchdir = /srv\nenv = A=%(chdir)\nenv = B=%%(chdir)\nenv = C=%()\n",
		want:  []string{`2 uwsgi/chdir "/srv"`, `3 uwsgi/env "A=%(chdir)" (expands)`, `4 uwsgi/env "B=%(chdir)" (expands)`, `5 uwsgi/env "C=%()"`},
		shown: []string{"A=/srv", "B=/srv"},
	},
	{
		name:  "environment variables and files expand",
		in:    "[uwsgi]\nenv = A=$(HOME)\nenv = B=@(FILE)\nenv = C=$HOME $(\nenv = D=$(A$(HOME))\n",
		want:  []string{`2 uwsgi/env "A=$(HOME)" (expands)`, `3 uwsgi/env "B=@(FILE)" (expands)`, `4 uwsgi/env "C=$HOME $("`, `5 uwsgi/env "D=$(A$(HOME))" (expands)`},
		shown: []string{"A=/home/djship", "B=from a file", "D=$(A/home/djship)"},
	},
	{
		name:  "@(exec://...) runs a command",
		in:    "[uwsgi]\nenv = A=@(exec://echo from a command)\n",
		want:  []string{`2 uwsgi/env "A=@(exec://echo from a command)" (expands)`},
		shown: []string{"A=from a command"},
	},
	{
		name:  "nested parentheses in a reference",
		in:    "[uwsgi]\nenv = A=$(HO(M)E)\n",
		want:  []string{`2 uwsgi/env "A=$(HO(M)E)" (expands)`},
		shown: []string{"A=$(HO(M)E)"},
	},
}

func TestUWSGIIni(t *testing.T) {
	for _, c := range uwsgiCases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := UWSGIIni([]byte(c.in))
			expect(t, ds, err, c.want, "")
		})
	}
}

// uwsgiShow runs uwsgi --show-config on an ini file and returns the
// options it read from it, "key = value", and the output. --clock with a
// clock that does not exist makes it exit right after showing them, and
// --logto keeps its log, which a logto in the file would send elsewhere,
// in the file's folder.
func uwsgiShow(t *testing.T, uwsgi, ini string, env ...string) ([]string, string) {
	t.Helper()
	log := filepath.Join(filepath.Dir(ini), "uwsgi.log")
	cmd := exec.Command(uwsgi, "--ini", ini, "--show-config", "--clock", "djship-stop-here", "--logto", log)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	logged, _ := os.ReadFile(log)
	// log-date puts the time in front of every line.
	text := string(out) + regexp.MustCompile(`(?m)^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - `).ReplaceAllString(string(logged), "")
	_, shown, ok := strings.Cut(text, ";uWSGI instance configuration\n[uwsgi]\n")
	shown, _, ok2 := strings.Cut(shown, ";end of configuration\n")
	if !ok || !ok2 || !strings.Contains(text, `unable to set "djship-stop-here" clock`) {
		t.Fatalf("uwsgi did not show its configuration:\n%s", text)
	}
	var opts []string
	for _, l := range strings.Split(strings.TrimSuffix(shown, "\n"), "\n") {
		if l == "ini = "+ini || l == "show-config = true" || l == "clock = djship-stop-here" || l == "logto = "+log {
			continue
		}
		opts = append(opts, l)
	}
	return opts, text
}

// TestUWSGIIniAgainstUWSGI compares each case with the options uWSGI
// shows it read from the [uwsgi] section, values expanded.
func TestUWSGIIniAgainstUWSGI(t *testing.T) {
	uwsgi := testenv.Command(t, "uwsgi", "uwsgi uwsgi-plugin-python3")
	for _, c := range uwsgiCases {
		t.Run(c.name, func(t *testing.T) { uwsgiAgrees(t, uwsgi, c.in, c.shown) })
	}
}

// uwsgiAgrees checks that uWSGI reads from the ini file the options of
// the [uwsgi] section UWSGIIni finds; shown are the values it shows for
// the ones that expand.
func uwsgiAgrees(t *testing.T, uwsgi, in string, shown []string) {
	t.Helper()
	dir := tempDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ini := filepath.Join(dir, "t.ini")
	if err := os.WriteFile(ini, []byte(strings.ReplaceAll(in, "@(FILE)", "@("+file+")")), 0o644); err != nil {
		t.Fatal(err)
	}
	got, out := uwsgiShow(t, uwsgi, ini, "HOME=/home/djship")
	ds, err := UWSGIIni([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range ds {
		if len(d.Context) != 1 || d.Context[0] != "uwsgi" {
			continue
		}
		v := d.Args[0]
		if d.Expands {
			if len(shown) == 0 {
				t.Fatalf("the case does not say what uWSGI shows for %s", d)
			}
			v, shown = shown[0], shown[1:]
		}
		want = append(want, fmt.Sprintf("%s = %s", d.Name, v))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("uwsgi read\n%s\nthe parser\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
}

// TestUWSGIMagicLetters checks the magic variables letter by letter: %
// and a letter uwsgiMagic does not name must disappear; one it names must
// become a value (some are empty here: %x and %X without a section in the
// file name, %2 to %9 for a folder only two deep).
func TestUWSGIMagicLetters(t *testing.T) {
	uwsgi := testenv.Command(t, "uwsgi", "uwsgi uwsgi-plugin-python3")
	var b strings.Builder
	b.WriteString("[uwsgi]\n")
	var letters []byte
	for c := byte(' '); c <= '~'; c++ {
		if c == '%' || c == '(' {
			continue
		}
		letters = append(letters, c)
		fmt.Fprintf(&b, "env = V%02x=[%%%c]\n", c, c)
	}
	dir := tempDir(t)
	ini := filepath.Join(dir, "t.ini")
	if err := os.WriteFile(ini, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	shown, out := uwsgiShow(t, uwsgi, ini)
	if len(shown) != len(letters) {
		t.Fatalf("uwsgi shows %d options for %d lines:\n%s", len(shown), len(letters), out)
	}
	ds, err := UWSGIIni([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range letters {
		magic := strings.IndexByte(uwsgiMagic, c) >= 0
		empty := shown[i] == fmt.Sprintf("env = V%02x=[]", c)
		if ds[i].Expands != magic {
			t.Errorf("%%%c: Expands = %v", c, ds[i].Expands)
		}
		switch {
		case !magic && !empty:
			t.Errorf("%%%c is not a magic variable for the parser, uWSGI shows %q", c, shown[i])
		case magic && empty && !strings.ContainsRune("xX23456789", rune(c)):
			t.Errorf("%%%c is a magic variable for the parser, uWSGI shows %q", c, shown[i])
		}
	}
}
