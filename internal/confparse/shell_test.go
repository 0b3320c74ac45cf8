package confparse

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
	"mvdan.cc/sh/v3/syntax"
)

var shellShapeCases = []struct {
	name string
	in   string
	want string
	err  string
}{
	{
		name: "quoting does not change a word",
		in:   "echo plain 'single quoted' \"double quoted\" back\\ slash 'it'\"'\"'s' \"\"\n",
		want: "call 7: L L L L L L L",
	},
	{
		name: "a space splits a word",
		in:   "install -d -o shop -g www-data /run/a b\n",
		want: "call 8: L L L L L L L L",
	},
	{
		name: "assignments, quoted and unquoted expansions",
		in:   "RUNDIR=/run/x\nPIDFILE=$RUNDIR/pid\nkill -0 \"$(cat \"$PIDFILE\")\" $PIDFILE \"${X:-d$Y}\" $((1+2))\n",
		want: "assign 0: RUNDIR=L\nassign 0: PIDFILE=${RUNDIR}L\ncall 6: L L \"$(1)\" ${PIDFILE} \"${X:-L${Y}}\" $((…))\n  call 2: L \"${PIDFILE}\"",
	},
	{
		name: "a command substitution in a value",
		in:   "cd /srv/$(id)x `id`\n",
		want: "call 3: L L$(1)L $(1)\n  call 1: L\n  call 1: L",
	},
	{
		name: "unquoted glob characters and tildes",
		in:   "ls a* 'b*' b\\* ~ ~/x a~ \"~\"\nP=a:~/b\n",
		want: "call 8: L L* L L L~ L~ L L\nassign 0: P=L~",
	},
	{
		name: "lists, pipes, negation, background",
		in:   "a && b || c | d\n! e &\nf; g\n",
		want: "binary ||\n  binary &&\n    call 1: L\n    call 1: L\n  binary |\n    call 1: L\n    call 1: L\nstmt ! &\n  call 1: L\ncall 1: L\ncall 1: L",
	},
	{
		name: "redirections and here-documents",
		in:   "echo x >&2 2>/dev/null <in\ncat <<EOF\nhello $USER\nEOF\ncat <<'EOF'\nhello $USER\nEOF\n",
		want: "call 2: L L\nredirect >& L\nredirect 2> L\nredirect < L\ncall 1: L\nheredoc << L\n  body L${USER}L\ncall 1: L\nheredoc << L\n  body L",
	},
	{
		name: "functions and compound commands",
		in:   "f() {\n    if [ -f x ]; then a; elif b; then c; else d; fi\n    for i in $(seq 3) x; do e; done\n    while g; do h; done\n    case \"$1\" in start) s ;; stop|halt) t ;; esac\n    (sub)\n}\n",
		want: strings.Join([]string{
			"func f", "  {",
			"    if", "      call 4: L* L L L", "    then", "      call 1: L", "    elif", "      call 1: L", "    then", "      call 1: L", "    else", "      call 1: L", "    fi",
			"    for i in 2: $(1) L", "      call 2: L L", "    do", "      call 1: L", "    done",
			"    while", "      call 1: L", "    do", "      call 1: L", "    done",
			"    case \"${1}\"", "      pattern 1: L ;;", "        call 1: L", "      pattern 2: L | L ;;", "        call 1: L", "    esac",
			"    (", "      call 1: L", "    )",
			"  }",
		}, "\n"),
	},
	{
		name: "comments are left out, # inside a word is not one",
		in:   "echo a#b # c d\n# echo hidden\n",
		want: "call 2: L L",
	},
	{
		name: "a newline in a value starts a command",
		in:   "echo \"gunicorn-shop did not start\"\necho a\nrm -rf x\n",
		want: "call 2: L L\ncall 2: L L\ncall 3: L L L",
	},
	{
		name: "an LSB header",
		in:   "#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          x\n# Description:       a\n#  continued\n# junk\n### END INIT INFO\ntrue\n",
		want: "lsb begin\nlsb Provides:\nlsb Description:\nlsb +\nlsb ?\nlsb end\ncall 1: L",
	},
	{
		name: "an unterminated quote",
		in:   "echo 'a\n",
		err:  "shell: line 1: reached EOF without closing quote `'`",
	},
	{
		name: "a bash array is not POSIX",
		in:   "a=(1 2)\n",
		err:  "shell: line 1: arrays are a bash/mksh/zsh feature; tried parsing as posix",
	},
}

func TestShellShape(t *testing.T) {
	for _, c := range shellShapeCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ShellShape([]byte(c.in))
			if c.err != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Error() != c.err {
					t.Fatalf("error = %v, want %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != c.want {
				t.Errorf("shape\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestShellLanded(t *testing.T) {
	script := "SRC=/srv/www/shop/current/src\n" +
		"start-stop-daemon --chdir /srv/www/shop/current/src --env 'X=/srv/www/shop/current/src'\"'\"'s' \"$SRC\"\n" +
		"# in /srv/www/shop/current/src\n" +
		"cd /srv/www/shop/current/$(id)src\n"
	got, err := ShellLanded([]byte(script), "/srv/www/shop/current/src")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range got {
		lines = append(lines, fmt.Sprintf("%d:%d %s %s %d %q %v", l.Line, l.Col, l.Kind, l.Command, l.Index, l.Word, l.Whole))
	}
	want := []string{
		`1:5 assign SRC 0 "/srv/www/shop/current/src" true`,
		`2:27 arg start-stop-daemon 2 "/srv/www/shop/current/src" true`,
		`2:59 arg start-stop-daemon 4 "X=/srv/www/shop/current/src's" false`,
		`3:1 comment  0 " in /srv/www/shop/current/src" false`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("landings\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got, _ := ShellLanded([]byte("install -d /srv/a b\n"), "/srv/a b"); len(got) != 0 {
		t.Errorf("a value split into two words landed in %+v", got)
	}
}

// dashWords are scripts of probe commands: dash runs them with a probe
// that prints its arguments, which must be the words the parser found.
var dashWords = []string{
	"probe a 'b c' \"d e\" f\\ g h\\\\i 'j'\"k\"l \"\" ''\n",
	"probe a#b #c d\nprobe e;probe f\n",
	"probe \"a\nb\" 'c\nd'\n",
	"probe a\\\nb \"c\\\nd\" 'e\\\nf'\n",
	"probe \"a\\$b\" \"a\\\\b\" \"a\\qb\" 'a\\b' \"a\\\"b\" a\\qb\n",
	"probe {a,b} a=b c\nX=1 probe d\n",
	"probe * '*' a?b [x]\n",
	"probe '--env' 'GREETING=100% \"quoted\" $HOME \\ it'\"'\"'s'\n",
	"probe a ; probe b & wait\n",
}

// TestShellAgainstDash runs scripts with dash, Debian's /bin/sh: the
// arguments each probe command receives must be the parser's words, and
// dash -n must accept exactly the scripts the parser does.
func TestShellAgainstDash(t *testing.T) {
	dash := testenv.Command(t, "dash", "dash")
	dir := tempDir(t) // globs match nothing here
	for _, script := range dashWords {
		t.Run(script, func(t *testing.T) {
			f, err := parseShell([]byte(script))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			syntax.Walk(f, func(n syntax.Node) bool {
				if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 && staticWord(c.Args[0]) == "probe" {
					want = append(want, fmt.Sprint(len(c.Args)-1))
					for _, w := range c.Args[1:] {
						want = append(want, staticWord(w))
					}
				}
				return true
			})
			cmd := exec.Command(dash, "-c", "probe() { printf '%s\\0' \"$#\" \"$@\"; }\n"+script)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("dash: %v", err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("dash passed\n%q\nthe parser found\n%q", got, want)
			}
		})
	}
	for _, c := range []struct {
		script string
		// mvdan's POSIX mode is stricter than dash -n here: dash only
		// fails when it runs the line.
		stricter bool
	}{
		{script: "echo 'a\n"},
		{script: "echo \"a\n"},
		{script: "echo $(x\n"},
		{script: "if true; then echo\n"},
		{script: "echo a)b\n"},
		{script: "f() { :; }\nf\n"},
		{script: "case x in a) ;; esac\n"},
		{script: "cat <<EOF\nx\nEOF\n"},
		{script: "echo ${x:-y} ${#x} ${x%y}\n"},
		{script: "a=(1 2)\n"},
		{script: "echo `echo a`\n"},
		{script: "echo ${x/a/b}\n", stricter: true},
		{script: "function f { :; }\n"},
		{script: "()00\n"},
		{script: "() { :; }\n"},
	} {
		t.Run("sh -n "+c.script, func(t *testing.T) {
			_, perr := parseShell([]byte(c.script))
			cmd := exec.Command(dash, "-n")
			cmd.Stdin = bytes.NewReader([]byte(c.script))
			out, derr := cmd.CombinedOutput()
			if c.stricter {
				if perr == nil || derr != nil {
					t.Errorf("the parser (%v) is no longer stricter than dash -n (%v %s)", perr, derr, out)
				}
				return
			}
			if (perr == nil) != (derr == nil) {
				t.Errorf("the parser says %v, dash -n %v %s", perr, derr, out)
			}
		})
	}
}
