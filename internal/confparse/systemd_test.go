package confparse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

var systemdCases = []struct {
	name string
	unit string // the file name; t.service if empty
	in   string
	want []string
	err  string
}{
	{
		name: "sections and assignments",
		in:   "# comment\n[Unit]\nDescription=test unit\n\n[Service]\nType=oneshot\nExecStart=/bin/echo a b\n",
		want: []string{`3 Unit/Description "test unit"`, `6 Service/Type "oneshot"`, `7 Service/ExecStart "/bin/echo" "a" "b"`},
	},
	{
		name: "comment lines start with # or ;, after blanks",
		in:   "[Service]\nExecStart=/bin/true\n; ProbeA=1\n  # ProbeB=2\n\t;ProbeC=3\nProbeD=4 # not a comment ; nor this\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `6 Service/ProbeD "4 # not a comment ; nor this"`},
	},
	{
		name: "a trailing backslash continues, as a space, at the last line",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1 \\\n  ProbeB=2\nProbeC=3\\\n4\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `4 Service/ProbeA "1    ProbeB=2"`, `6 Service/ProbeC "3 4"`},
	},
	{
		name: "comment lines inside a continuation are skipped",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1 \\\n# comment\n; other\n  ProbeB=2\nProbeC=3\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `6 Service/ProbeA "1    ProbeB=2"`, `7 Service/ProbeC "3"`},
	},
	{
		name: "an empty line ends a continuation",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1 \\\n\nProbeB=2\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `4 Service/ProbeA "1"`, `5 Service/ProbeB "2"`},
	},
	{
		name: "two backslashes do not continue",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1\\\\\nProbeB=2\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `3 Service/ProbeA "1\\\\"`, `4 Service/ProbeB "2"`},
	},
	{
		name: "a continuation at the end of the file",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1\\\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `4 Service/ProbeA "1"`},
	},
	{
		name: "CR, CR LF, LF CR and NUL end lines",
		in:   "[Service]\nExecStart=/bin/true\nProbeA=1\rProbeB=2\r\nProbeC=3\n\rProbeD=4\x00ProbeE=5\r\rProbeF=6\\\r\nProbeG=7\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `3 Service/ProbeA "1"`, `4 Service/ProbeB "2"`, `5 Service/ProbeC "3"`, `6 Service/ProbeD "4"`, `7 Service/ProbeE "5"`, `10 Service/ProbeF "6 ProbeG=7"`},
	},
	{
		name: "lines without =, or without a key, are ignored",
		in:   "[Service]\nExecStart=/bin/true\nProbeA\n=2\n  ProbeB \t=\t 3 \t\nProbeC==4\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `5 Service/ProbeB "3"`, `6 Service/ProbeC "=4"`},
	},
	{
		name: "a byte order mark",
		in:   "\xef\xbb\xbf[Service]\nExecStart=/bin/true\nProbeA=1\n",
		want: []string{`2 Service/ExecStart "/bin/true"`, `3 Service/ProbeA "1"`},
	},
	{
		name: "an invalid section header",
		in:   "[Service]\nProbeA=1\n[Service\nProbeB=2\n",
		err:  "systemd: line 3: Invalid section header '[Service'",
	},
	{
		name: "a line that is not UTF-8",
		in:   "[Service]\nProbeA=\xff\n",
		err:  "systemd: line 2: String is not UTF-8 clean, ignoring assignment: ProbeA=\ufffd",
	},
	{
		name: "command line words",
		in:   "[Service]\nType=oneshot\nExecStart=/bin/echo a\"b c\"d 'e\\x41\\s' \\\\ \\q \"\\\"\" '' %% 100%%\n",
		want: []string{`2 Service/Type "oneshot"`, `3 Service/ExecStart "/bin/echo" "ab cd" "eA " "\\" "\\q" "\"" "" "%" "100%"`},
	},
	{
		name: "; separates commands, \\; is a word",
		in:   "[Service]\nType=oneshot\nExecStart=/bin/echo a ; /bin/echo b \\; c;d \";\" ;\n",
		want: []string{`2 Service/Type "oneshot"`, `3 Service/ExecStart "/bin/echo" "a"`, `3 Service/ExecStart "/bin/echo" "b" ";" "c;d" ";"`},
	},
	{
		name: "prefixes",
		in:   "[Service]\nType=oneshot\nExecStart=-/bin/echo a\nExecStart=@/bin/echo argv0 b\nExecStart=:/bin/echo $HOME\nExecStartPre=+/bin/true\nExecStartPost=!!/bin/true\n",
		want: []string{
			`2 Service/Type "oneshot"`,
			`3 Service/ExecStart prefix="-" "/bin/echo" "a"`,
			`4 Service/ExecStart prefix="@" "/bin/echo" "argv0" "b"`,
			`5 Service/ExecStart prefix=":" "/bin/echo" "$HOME"`,
			`6 Service/ExecStartPre prefix="+" "/bin/true"`,
			`7 Service/ExecStartPost prefix="!!" "/bin/true"`,
		},
	},
	{
		name: "variables and specifiers expand",
		in:   "[Service]\nType=oneshot\nExecStart=/bin/echo $HOME\nExecStart=/bin/echo x${HOME}y\nExecStart=/bin/echo $$HOME ${HOME:-x}\nExecStart=/bin/echo %n\n",
		want: []string{
			`2 Service/Type "oneshot"`,
			`3 Service/ExecStart "/bin/echo" "$HOME" (expands)`,
			`4 Service/ExecStart "/bin/echo" "x${HOME}y" (expands)`,
			`5 Service/ExecStart "/bin/echo" "$$HOME" "${HOME:-x}"`,
			`6 Service/ExecStart "/bin/echo" "%n" (expands)`,
		},
	},
	{
		name: "an empty command line resets the list",
		in:   "[Service]\nType=oneshot\nExecStart=/bin/echo a\nExecStart=\nExecStart=/bin/echo b\n",
		want: []string{`2 Service/Type "oneshot"`, `3 Service/ExecStart "/bin/echo" "a"`, `4 Service/ExecStart`, `5 Service/ExecStart "/bin/echo" "b"`},
	},
	{
		name: "an unbalanced first word drops the line",
		in:   "[Service]\nType=oneshot\nExecStart=\"/bin/echo a\nExecStart=/bin/echo b\n",
		want: []string{`2 Service/Type "oneshot"`, `4 Service/ExecStart "/bin/echo" "b"`},
	},
	{
		name: "an unbalanced later word fails the unit",
		in:   "[Service]\nType=oneshot\nExecStart=/bin/echo \"abc\n",
		err:  `systemd: line 3: Unbalanced quoting, ignoring: "/bin/echo "abc"`,
	},
	{
		name: "a relative path with a slash fails the unit",
		in:   "[Service]\nExecStart=bin/echo\n",
		err:  "systemd: line 2: Neither a valid executable name nor an absolute path: bin/echo",
	},
	{
		name: "an unknown specifier fails the unit",
		in:   "[Service]\nExecStart=/bin/echo %Z\n",
		err:  "systemd: line 2: Failed to resolve unit specifiers in %Z",
	},
	{
		name: "Environment assignments",
		in:   "[Service]\nExecStart=/bin/true\nEnvironment=\"A=1 2\" B=3 'C=4' bad D=%%x E=\\x41 F=a\\\"b\nEnvironment=A=5\nEnvironment=G=1 H=\\q I=2\n",
		want: []string{
			`2 Service/ExecStart "/bin/true"`,
			`3 Service/Environment "A=1 2" "B=3" "C=4" "D=%x" "E=A" "F=a\"b"`,
			`4 Service/Environment "A=5"`,
			`5 Service/Environment "G=1"`,
		},
	},
	{
		name: "a socket unit",
		unit: "t.socket",
		in:   "[Socket]\nListenStream=/run/djship-test.sock\nExecStartPre=/bin/echo pre \"x y\"\n",
		want: []string{`2 Socket/ListenStream "/run/djship-test.sock"`, `3 Socket/ExecStartPre "/bin/echo" "pre" "x y"`},
	},
}

func TestSystemdUnit(t *testing.T) {
	for _, c := range systemdCases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := SystemdUnit([]byte(c.in))
			expect(t, ds, err, c.want, c.err)
		})
	}
}

// sdDumpWords splits a "Command Line:" of systemd's unit dump, written by
// quote_command_line: words that need it are in double quotes, with
// backslash before " \ ` $ and C escapes for control characters.
func sdDumpWords(line string) []string {
	var words []string
	for _, f := range regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\S+`).FindAllString(line, -1) {
		if !strings.HasPrefix(f, `"`) {
			words = append(words, f)
			continue
		}
		var b strings.Builder
		body := f[1 : len(f)-1]
		for i := 0; i < len(body); i++ {
			if body[i] != '\\' {
				b.WriteByte(body[i])
				continue
			}
			i++
			switch c := body[i]; {
			case c >= '0' && c <= '7':
				b.WriteByte((c-'0')<<6 | (body[i+1]-'0')<<3 | (body[i+2] - '0'))
				i += 2
			case strings.IndexByte("abfnrtv", c) >= 0:
				b.WriteByte("\a\b\f\n\r\t\v"[strings.IndexByte("abfnrtv", c)])
			default:
				b.WriteByte(c)
			}
		}
		words = append(words, b.String())
	}
	return words
}

// systemdVerify runs systemd-analyze verify at debug level, where it dumps
// the unit, and returns the output.
func systemdVerify(t *testing.T, analyze, path string) (string, bool) {
	t.Helper()
	cmd := exec.Command(analyze, "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// TestSystemdUnitAgainstSystemd compares each case with what systemd
// loads from it: every key named Probe* must be warned about as unknown,
// at its line and in its section, and nothing else; the command lines and
// the environment of the unit dump must be the parser's; an error must
// be systemd's, at its line.
func TestSystemdUnitAgainstSystemd(t *testing.T) {
	analyze := testenv.Command(t, "systemd-analyze", "systemd")
	for _, c := range systemdCases {
		t.Run(c.name, func(t *testing.T) {
			name := c.unit
			if name == "" {
				name = "t.service"
			}
			systemdAgrees(t, analyze, name, c.in, true)
		})
	}
}

// systemdAgrees checks that systemd loads from the unit file what
// SystemdUnit reads in it. With mustLoad, systemd-analyze verify must
// also pass (it fails for a command that is not on this machine).
func systemdAgrees(t *testing.T, analyze, name, in string, mustLoad bool) {
	t.Helper()
	dir := tempDir(t)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".socket") {
		// The service the socket starts.
		service := strings.TrimSuffix(path, ".socket") + ".service"
		if err := os.WriteFile(service, []byte("[Service]\nExecStart=/bin/true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, ok := systemdVerify(t, analyze, path)
	ds, err := SystemdUnit([]byte(in))
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s:%d: %s", path, se.Line, se.Msg)
		if ok || !strings.Contains(out, want) {
			t.Errorf("systemd-analyze verify: want %q, got (ok=%v)\n%s", want, ok, out)
		}
		return
	}
	if !ok && mustLoad {
		t.Fatalf("systemd-analyze verify refused the unit:\n%s", out)
	}
	if !strings.Contains(out, "-> Unit "+name+":") {
		t.Fatalf("systemd-analyze verify did not load the unit:\n%s", out)
	}

	var warned, probes []string
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(path)+`:(\d+): Unknown key '([^']*)' in section \[([^]]*)\], ignoring\.`).FindAllStringSubmatch(out, -1) {
		warned = append(warned, fmt.Sprintf("%s %s/%s", m[1], m[3], m[2]))
	}
	type command struct{ key, line string }
	var commands []command
	var env []string
	for _, d := range ds {
		switch {
		case strings.HasPrefix(d.Name, "Probe"):
			probes = append(probes, fmt.Sprintf("%d %s", d.Line, d.Path()))
		case sdExecKeys[d.Context[0]+"."+d.Name]:
			if len(d.Args) == 0 {
				commands = slices.DeleteFunc(commands, func(c command) bool { return c.key == d.Name })
				continue
			}
			argv := d.Args
			if strings.Contains(d.Prefix, "@") {
				argv = argv[1:]
			}
			var words []string
			for _, w := range argv {
				words = append(words, strings.ReplaceAll(w, "%n", name))
			}
			commands = append(commands, command{d.Name, strings.Join(words, "\x00")})
		case d.Name == "Environment":
			for _, a := range d.Args {
				i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, strings.SplitN(a, "=", 2)[0]+"=") })
				if i >= 0 {
					env[i] = a
				} else {
					env = append(env, a)
				}
			}
		}
	}
	if strings.Join(warned, "\n") != strings.Join(probes, "\n") {
		t.Errorf("systemd warned about the unknown keys\n%s\nthe parser has\n%s", strings.Join(warned, "\n"), strings.Join(probes, "\n"))
	}

	// The dump lists the commands by setting, in the order of
	// the service's (or socket's) command types.
	_, unit, _ := strings.Cut(out, "-> Unit "+name+":")
	var dumped []command
	key := ""
	var dumpedEnv []string
	for _, l := range strings.Split(unit, "\n") {
		l = strings.TrimLeft(l, "\t")
		switch {
		case strings.HasPrefix(l, "-> Exec"):
			key = strings.TrimSuffix(strings.TrimPrefix(l, "-> "), ":")
		case strings.HasPrefix(l, "Command Line: "):
			dumped = append(dumped, command{key, strings.Join(sdDumpWords(strings.TrimPrefix(l, "Command Line: ")), "\x00")})
		case strings.HasPrefix(l, "Environment: "):
			dumpedEnv = append(dumpedEnv, strings.TrimPrefix(l, "Environment: "))
		}
	}
	order := []string{"ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"}
	if strings.HasSuffix(name, ".socket") {
		order = []string{"ExecStartPre", "ExecStartPost", "ExecStopPre", "ExecStopPost"}
	}
	slices.SortStableFunc(commands, func(a, b command) int { return slices.Index(order, a.key) - slices.Index(order, b.key) })
	if fmt.Sprintf("%q", dumped) != fmt.Sprintf("%q", commands) {
		t.Errorf("systemd loaded the commands\n%q\nthe parser\n%q", dumped, commands)
	}
	if strings.Join(dumpedEnv, "\n") != strings.Join(env, "\n") {
		t.Errorf("systemd loaded the environment\n%q\nthe parser\n%q", dumpedEnv, env)
	}
}
