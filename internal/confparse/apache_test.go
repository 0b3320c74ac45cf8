package confparse

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

var apacheCases = []struct {
	name string
	in   string
	want []string
	err  string
}{
	{
		name: "sections and directives",
		in:   "<VirtualHost *:80>\n    ServerAdmin admin@example.com\n    <Directory /srv/www/shop/current/static>\n        Options -Indexes\n    </Directory>\n    Alias /static/ /srv/www/shop/current/static/\n</VirtualHost>\n",
		want: []string{
			`1 VirtualHost "*:80" {`,
			`2 VirtualHost/ServerAdmin "admin@example.com"`,
			`3 VirtualHost/Directory "/srv/www/shop/current/static" {`,
			`4 VirtualHost/Directory/Options "-Indexes"`,
			`6 VirtualHost/Alias "/static/" "/srv/www/shop/current/static/"`,
		},
	},
	{
		name: "a trailing backslash joins the next line, at its line",
		in:   "ServerAdmin admin\\\n@example.com\nAddType text/x a \\\n  b\n",
		want: []string{`2 ServerAdmin "admin@example.com"`, `4 AddType "text/x" "a" "b"`},
	},
	{
		name: "a comment continues too, and swallows the next directive",
		in:   "# Managed for shop\\\nServerAdmin hidden@example.com\nServerAdmin shown@example.com\n",
		want: []string{`3 ServerAdmin "shown@example.com"`},
	},
	{
		name: "a value ending in a backslash joins the section that follows",
		in:   "Alias /static/ /srv/x\\\n<Directory /srv/x>\n    Options -Indexes\n</Directory>\n",
		err:  "apache: line 4: </Directory> without matching <Directory> section",
	},
	{
		name: "CR LF after the backslash",
		in:   "ServerAdmin admin\\\r\n@example.com\r\nServerName www.example.com\r\n",
		want: []string{`2 ServerAdmin "admin@example.com"`, `3 ServerName "www.example.com"`},
	},
	{
		name: "a space after the backslash: no continuation",
		in:   "AddType text/x a\\ \nAddType text/y b\n",
		want: []string{`1 AddType "text/x" "a\\"`, `2 AddType "text/y" "b"`},
	},
	{
		name: "two backslashes still continue, leaving one",
		in:   "AddType text/x a\\\\\nb\n",
		want: []string{`2 AddType "text/x" "a\\b"`},
	},
	{
		name: "an empty line after two backslashes continues again",
		in:   "AddType text/x a\\\\\n\nAddType text/y c\n",
		want: []string{`3 AddType "text/x" "aAddType" "text/y" "c"`},
	},
	{
		name: "a backslash at the end of the file without a newline stays",
		in:   "AddType text/x a\\",
		want: []string{`1 AddType "text/x" "a\\"`},
	},
	{
		name: "a continued last line",
		in:   "AddType text/x a\\\n",
		want: []string{`2 AddType "text/x" "a"`},
	},
	{
		name: "# only starts a comment at the start of a line",
		in:   "AddType text/x a#b # c\n  # ServerAdmin hidden@example.com\n",
		want: []string{`1 AddType "text/x" "a#b" "#" "c"`},
	},
	{
		name: "quotes",
		in:   "AddType \"text/a b\" \"x\\\"y\" 'p\\'q' \"r\\\\s\" 't\"u' \"v\\w\" x\\\\y \"\"z\n",
		want: []string{`1 AddType "text/a b" "x\"y" "p'q" "r\\s" "t\"u" "v\\w" "x\\y" "" "z"`},
	},
	{
		name: "a quote in the middle of a word is ordinary",
		in:   "AddType text/x a\"b c'd\n",
		want: []string{`1 AddType "text/x" "a\"b" "c'd"`},
	},
	{
		name: "an unterminated quote runs to the end of the line",
		in:   "AddType text/x \"a b\nAddType text/y c\n",
		want: []string{`1 AddType "text/x" "a b"`, `2 AddType "text/y" "c"`},
	},
	{
		name: "whitespace: tabs, vertical tabs, form feeds and CRs",
		in:   "\t\vAddType\ttext/x\ra\fb \t\n",
		want: []string{`1 AddType "text/x" "a" "b"`},
	},
	{
		name: "a NUL ends the line",
		in:   "ServerAdmin a@example.com\x00 ServerName x\\\nServerName www.example.com\n",
		want: []string{`1 ServerAdmin "a@example.com"`, `2 ServerName "www.example.com"`},
	},
	{
		name: "a trailing > on a directive name is dropped",
		in:   "ServerAdmin> admin@example.com\n",
		want: []string{`1 ServerAdmin "admin@example.com"`},
	},
	{
		name: "a line starting with an empty quoted word is skipped",
		in:   "\"\" ServerAdmin admin@example.com\nServerName www.example.com\n",
		want: []string{`2 ServerName "www.example.com"`},
	},
	{
		name: "section names match without regard to case",
		in:   "<directory /tmp>\n    Options -Indexes\n</DIRECTORY>\n",
		want: []string{`1 directory "/tmp" {`, `2 directory/Options "-Indexes"`},
	},
	{
		name: "section arguments end at the last >, quotes and all",
		in:   "<Directory \"/srv/a b\">\n</Directory>\n<Location /a>b>\n</Location>\n<Directory /c> ignored\n</Directory>\n",
		want: []string{`1 Directory "/srv/a b" {`, `3 Location "/a>b" {`, `5 Directory "/c" {`},
	},
	{
		name: "a section without >",
		in:   "<Directory /tmp\n</Directory>\n",
		err:  "apache: line 1: <Directory> directive missing closing '>'",
	},
	{
		name: "a closing tag without >",
		in:   "<Directory /tmp>\n</Directory >\n",
		err:  "apache: line 2: </Directory> directive missing closing '>'",
	},
	{
		name: "a closing tag for another section",
		in:   "<VirtualHost *:80>\n<Directory /tmp>\n</VirtualHost>\n",
		err:  "apache: line 3: Expected </Directory> but saw </VirtualHost>",
	},
	{
		name: "a closing tag without a section",
		in:   "ServerAdmin admin@example.com\n</VirtualHost>\n",
		err:  "apache: line 2: </VirtualHost> without matching <VirtualHost> section",
	},
	{
		name: "an unclosed section",
		in:   "<VirtualHost *:80>\n<Directory /tmp>\n",
		err:  "apache: line 2: <Directory> was not closed.",
	},
	{
		name: "Define, with quoting",
		in:   "Define djship_a \"a b\\\"c\"\nDefine djship_b a\\\\b\\c\nDefine djship_c\n",
		want: []string{`1 Define "djship_a" "a b\"c"`, `2 Define "djship_b" "a\\b\\c"`, `3 Define "djship_c"`},
	},
	{
		name: "Define shows each kind of quoted word",
		in:   "Define djship_d 'p\\'q'\nDefine djship_e \"r\\\\s\"\nDefine djship_f 't\"u'\nDefine djship_g \"v\\w\"\nDefine djship_h \"\"\nDefine djship_i \"unterminated \\\"x\n",
		want: []string{`1 Define "djship_d" "p'q"`, `2 Define "djship_e" "r\\s"`, `3 Define "djship_f" "t\"u"`, `4 Define "djship_g" "v\\w"`, `5 Define "djship_h" ""`, `6 Define "djship_i" "unterminated \"x"`},
	},
	{
		name: "${VAR} is an expansion",
		in:   "ServerAdmin ${DJSHIP_TEST_ADMIN}\nAddType text/x ${x\n",
		want: []string{`1 ServerAdmin "${DJSHIP_TEST_ADMIN}" (expands)`, `2 AddType "text/x" "${x"`},
	},
}

func TestApache(t *testing.T) {
	for _, c := range apacheCases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := Apache([]byte(c.in))
			expect(t, ds, err, c.want, c.err)
		})
	}
}

// apacheMain loads the modules of the directives in the cases, mod_info
// for DUMP_CONFIG, and includes site.
func apacheMain(t *testing.T, dir, site string) string {
	t.Helper()
	var b strings.Builder
	for _, m := range []string{"mpm_event", "authz_core", "alias", "mime", "env", "dir", "headers", "expires", "proxy", "proxy_http", "proxy_uwsgi", "socache_shmcb", "ssl", "http2", "info"} {
		fmt.Fprintf(&b, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	fmt.Fprintf(&b, "ServerName localhost\nErrorLog %[1]s/error.log\nPidFile %[1]s/pid\nInclude %[2]s\n", dir, site)
	p := filepath.Join(dir, "apache2.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dumped is one directive of apache2 -D DUMP_CONFIG.
type dumped struct {
	depth      int
	name, args string
	line       int
}

// apacheDump runs apache2 -t with DUMP_CONFIG (mod_info) and DUMP_RUN_CFG
// and returns the directives of site in the dump, the values of the
// Defines, and the output.
func apacheDump(t *testing.T, apache2, conf, site string) ([]dumped, map[string]string, string, bool) {
	t.Helper()
	cmd := exec.Command(apache2, "-t", "-f", conf, "-D", "DUMP_CONFIG", "-D", "DUMP_RUN_CFG")
	cmd.Env = os.Environ()
	for k, v := range apacheEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var ds []dumped
	defines := map[string]string{}
	file, line := "", 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	lineNo := regexp.MustCompile(`^ *# *(\d+):$`)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# In file: "):
			file = strings.TrimPrefix(l, "# In file: ")
		case lineNo.MatchString(l):
			line, _ = strconv.Atoi(lineNo.FindStringSubmatch(l)[1])
		case strings.HasPrefix(l, "Define: "):
			name, value, _ := strings.Cut(strings.TrimPrefix(l, "Define: "), "=")
			defines[name] = value
		case file == site && line > 0:
			text := strings.TrimLeft(l, " ")
			if strings.HasPrefix(text, "</") {
				continue
			}
			name, args, _ := strings.Cut(text, " ")
			ds = append(ds, dumped{(len(l) - len(text)) / 2, name, args, line})
			line = 0
		}
	}
	return ds, defines, string(out), err == nil
}

// TestApacheAgainstHttpd compares each case with what httpd -t builds
// from it, as mod_info dumps it: the directives, their nesting, their
// lines and their arguments as httpd stores them, the values Define
// gives its variables (which show how httpd split the words), or the
// error with its line.
func TestApacheAgainstHttpd(t *testing.T) {
	apache2 := testenv.Command(t, "apache2", "apache2")
	for _, c := range apacheCases {
		t.Run(c.name, func(t *testing.T) { apacheAgrees(t, apache2, c.in) })
	}
}

// apacheEnv is the environment httpd runs with in the tests; ${VAR} in
// the parser's arguments is expanded from it to compare.
var apacheEnv = map[string]string{"DJSHIP_TEST_ADMIN": "admin@example.com", "APACHE_LOG_DIR": "/var/log/apache2"}

// apacheAgrees checks that httpd -t reads in the file what Apache does.
func apacheAgrees(t *testing.T, apache2, in string) {
	t.Helper()
	dir := tempDir(t)
	site := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(site, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := apacheMain(t, dir, site)
	dump, defines, out, ok := apacheDump(t, apache2, conf, site)
	ds, err := Apache([]byte(in))
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatal(err)
		}
		where := fmt.Sprintf("line %d of %s:", se.Line, site)
		if strings.HasSuffix(se.Msg, "was not closed.") {
			where = fmt.Sprintf("%s:%d:", site, se.Line)
		}
		if ok || !strings.Contains(out, where) || !strings.Contains(out, se.Msg) {
			t.Errorf("httpd: want %s %s, got (ok=%v)\n%s", where, se.Msg, ok, out)
		}
		return
	}
	if !ok {
		t.Fatalf("httpd refused the file:\n%s", out)
	}
	var want []dumped
	for _, d := range ds {
		if strings.EqualFold(d.Name, "Define") {
			got, defined := defines[d.Args[0]]
			value := ""
			if len(d.Args) > 1 {
				value = d.Args[1]
			}
			if !defined || got != value {
				t.Errorf("httpd defined %s as %q (%v), the parser read %q", d.Args[0], got, defined, value)
			}
			continue
		}
		name, args := d.Name, d.Raw
		if d.Block {
			name = "<" + name
		}
		if d.Expands {
			args = os.Expand(args, func(v string) string { return apacheEnv[v] })
		}
		want = append(want, dumped{len(d.Context), name, args, d.Line})
	}
	if len(dump) != len(want) {
		t.Fatalf("httpd has %d directives, the parser %d\nhttpd:  %+v\nparser: %+v\n%s", len(dump), len(want), dump, want, out)
	}
	for i := range want {
		g, w := dump[i], want[i]
		if g.depth != w.depth || !strings.EqualFold(g.name, w.name) || g.args != w.args || g.line != w.line {
			t.Errorf("directive %d: httpd %+v, parser %+v", i, g, w)
		}
	}
}
