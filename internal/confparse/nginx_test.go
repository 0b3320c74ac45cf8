package confparse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/djship/djship/internal/testenv"
)

// nginxCase is a file and what nginx makes of it. In the real check the
// file is included inside a server block (or the http block with http),
// every directive named probe* must be reported by nginx -t as unknown,
// in order, at its line, and once they are all blanked out nginx -t must
// pass, or fail with final.
type nginxCase struct {
	name  string
	in    string
	want  []string
	err   string
	http  bool
	final string
}

var nginxCases = []nginxCase{
	{
		name: "directives and blocks",
		in:   "location /static/ {\n    alias /srv/www/shop/current/static/;\n    expires 30d;\n}\n",
		want: []string{
			`1 location "/static/" {`,
			`2 location/alias "/srv/www/shop/current/static/"`,
			`3 location/expires "30d"`,
		},
	},
	{
		name: "a value with ; and a block injects a location",
		in:   "location /static/ {\n    alias /srv/www;\n    location /static/x { probe_alias /etc/; } #/current/static/;\n}\n",
		want: []string{
			`1 location "/static/" {`,
			`2 location/alias "/srv/www"`,
			`3 location/location "/static/x" {`,
			`3 location/location/probe_alias "/etc/"`,
		},
	},
	{
		name: "an injected location nginx accepts",
		in:   "location /static/ {\n    alias /srv/www;\n    location /static/x { alias /etc/; } #/current/static/;\n}\n",
		want: []string{
			`1 location "/static/" {`,
			`2 location/alias "/srv/www"`,
			`3 location/location "/static/x" {`,
			`3 location/location/alias "/etc/"`,
		},
	},
	{
		name:  "an injected location that duplicates one",
		in:    "location /static/ {\n    alias /srv/www; }\nlocation /static/ { alias /x/current/static/;\n}\n",
		want:  []string{`1 location "/static/" {`, `2 location/alias "/srv/www"`, `3 location "/static/" {`, `3 location/alias "/x/current/static/"`},
		final: `duplicate location "/static/" in SITE:3`,
	},
	{
		name: "# in a token is ordinary",
		in:   "location /a#b {\n    alias /srv/#x;\n}\n",
		want: []string{`1 location "/a#b" {`, `2 location/alias "/srv/#x"`},
	},
	{
		name: "# after a space comments out the ; and the next line joins",
		in:   "location / {\n    index /srv/ #x;\n    probe_joined on;\n}\n",
		want: []string{`1 location "/" {`, `3 location/index "/srv/" "probe_joined" "on"`},
	},
	{
		name: "a comment line",
		in:   "# probe_commented on;\n  #probe_too on;\nprobe_live on;\n",
		want: []string{`3 probe_live "on"`},
	},
	{
		name: "double quotes hold ; { } # and spaces",
		in:   "probe_q \"a; b { c } # d\" 'e\\'f' \"g\\\"h\";\n",
		want: []string{`1 probe_q "a; b { c } # d" "e'f" "g\"h"`},
	},
	{
		name: "a quoted directive name",
		in:   "\"probe name\" x;\n'probe single' y;\n",
		want: []string{`1 probe name "x"`, `2 probe single "y"`},
	},
	{
		name:  "quoted argument contents, as nginx prints them",
		in:    "location \"/a b\\\"c;#{}\" {}\nlocation '/a b\"c;#{}' {}\n",
		want:  []string{`1 location "/a b\"c;#{}" {`, `2 location "/a b\"c;#{}" {`},
		final: `duplicate location "/a b"c;#{}" in SITE:2`,
	},
	{
		name:  "backslashes outside quotes",
		in:    "location /a\\;b\\ c\\\\d\\x {}\nlocation \"/a\\;b\\ c\\\\d\\x\" {}\n",
		want:  []string{`1 location "/a\\;b\\ c\\d\\x" {`, `2 location "/a\\;b\\ c\\d\\x" {`},
		final: `duplicate location "/a\;b\ c\d\x" in SITE:2`,
	},
	{
		name:  "\\t \\n \\r are unescaped",
		in:    "location /a\\tb\\nc {}\nlocation \"/a\tb\nc\" {}\n",
		want:  []string{`1 location "/a\tb\nc" {`, `3 location "/a\tb\nc" {`},
		final: "duplicate location \"/a\tb\nc\" in SITE:3",
	},
	{
		name:  "a backslash escapes a newline into the token",
		in:    "location /a\\\nb {}\nlocation \"/a\\\nb\" {}\n",
		want:  []string{"2 location \"/a\\\\\\nb\" {", "4 location \"/a\\\\\\nb\" {"},
		final: "duplicate location \"/a\\\nb\" in SITE:4",
	},
	{
		name:  "${ keeps the brace in the token, } is ordinary",
		in:    "location /a${b}c}d {}\nlocation \"/a${b}c}d\" {}\n",
		want:  []string{`1 location "/a${b}c}d" { (expands)`, `2 location "/a${b}c}d" { (expands)`},
		final: `duplicate location "/a${b}c}d" in SITE:2`,
	},
	{
		name: "{ without $ ends the token",
		in:   "location /a{ probe_in on; }\n",
		want: []string{`1 location "/a" {`, `1 location/probe_in "on"`},
	},
	{
		name:  "a quote inside a token is ordinary",
		in:    "location /a\"b'c {}\nlocation '/a\"b\\'c' {}\n",
		want:  []string{`1 location "/a\"b'c" {`, `2 location "/a\"b'c" {`},
		final: `duplicate location "/a"b'c" in SITE:2`,
	},
	{
		name: "a token after a closing quote must be separated",
		in:   "probe_x \"a\"b;\n",
		err:  `nginx: line 1: unexpected "b"`,
	},
	{
		name: "a ; right after a closing quote ends the directive",
		in:   "probe_x 'a';probe_y \"b\"{ }\n",
		want: []string{`1 probe_x "a"`, `1 probe_y "b" {`},
	},
	{
		name: ") after a closing quote starts a new token",
		in:   "probe_if (\"a\")b {}\n",
		want: []string{`1 probe_if "(\"a\")b" {`},
	},
	{
		name: ") right after a quoted token",
		in:   "probe_if \"a\")b {}\n",
		want: []string{`1 probe_if "a" ")b" {`},
	},
	{
		name: "CR, tab and CRLF are whitespace",
		in:   "probe_a 1\r2\t3;\r\nprobe_b 4;\r\n",
		want: []string{`1 probe_a "1" "2" "3"`, `2 probe_b "4"`},
	},
	{
		name: "an empty quoted argument",
		in:   "probe_e \"\" '';\n",
		want: []string{`1 probe_e "" ""`},
	},
	{
		name: "the directive line is the line of its ;",
		in:   "probe_a\n  1\n  2\n;\nprobe_b 3 {\n}\n",
		want: []string{`4 probe_a "1" "2"`, `5 probe_b "3" {`},
	},
	{
		name: "a stray }",
		in:   "location / {\n}\n}\n",
		err:  `nginx: line 3: unexpected "}"`,
	},
	{
		name: "} inside a directive",
		in:   "probe_a b }\n",
		err:  `nginx: line 1: unexpected "}"`,
	},
	{
		name: "an unclosed block",
		in:   "location / {\n    probe_a 1;\n",
		err:  `nginx: line 3: unexpected end of file, expecting "}"`,
	},
	{
		name: "a directive without ;",
		in:   "probe_a 1;\nprobe_b 2\n",
		err:  `nginx: line 3: unexpected end of file, expecting ";" or "}"`,
	},
	{
		name: "an unterminated quote",
		in:   "probe_a \"1;\n}\n",
		err:  `nginx: line 3: unexpected end of file, expecting ";" or "}"`,
	},
	{
		name: "a lone ;",
		in:   "probe_a 1;\n;\n",
		err:  `nginx: line 2: unexpected ";"`,
	},
	{
		name: "a { without a name",
		in:   "{ probe_a 1; }\n",
		err:  `nginx: line 1: unexpected "{"`,
	},
	{
		name: "a comment at the end of the file without a newline",
		in:   "probe_a 1; # done",
		want: []string{`1 probe_a "1"`},
	},
	{
		name: "a token of 4094 bytes fits the buffer",
		in:   "probe_long " + strings.Repeat("x", 4094) + " ;\n",
		want: []string{`1 probe_long "` + strings.Repeat("x", 4094) + `"`},
	},
	{
		name: "a token of 4095 bytes and its space do not",
		in:   "probe_long " + strings.Repeat("x", 4095) + " ;\n",
		err:  `nginx: line 1: too long parameter "xxxxxxxxxx..." started`,
	},
	{
		name: "a comment of 5000 bytes does not either",
		in:   "#" + strings.Repeat("x", 5000) + "\nprobe_a 1;\n",
		err:  `nginx: line 1: too long parameter "#xxxxxxxxx..." started`,
	},
	{
		name: "an unterminated quote longer than the buffer",
		in:   "probe_a \"" + strings.Repeat("x", 5000) + "\n",
		err:  `nginx: line 1: too long parameter, probably missing terminating """ character`,
	},
	{
		name: "an upstream at the http level",
		in:   "upstream djship_shop {\n    server unix:/run/x.sock;\n}\nprobe_after on;\n",
		want: []string{`1 upstream "djship_shop" {`, `2 upstream/server "unix:/run/x.sock"`, `4 probe_after "on"`},
		http: true,
	},
	{
		name:  "a site value that closes the server block",
		in:    "upstream u {\n    server unix:/run/x.sock; } probe_out on; upstream v { server unix:/y;\n}\n",
		want:  []string{`1 upstream "u" {`, `2 upstream/server "unix:/run/x.sock"`, `2 probe_out "on"`, `2 upstream "v" {`, `2 upstream/server "unix:/y"`},
		http:  true,
		final: "",
	},
}

func TestNginx(t *testing.T) {
	for _, c := range nginxCases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := Nginx([]byte(c.in))
			expect(t, ds, err, c.want, c.err)
		})
	}
}

// TestNginxAgainstNginx asks nginx -t about every case: the errors, the
// unknown probe directives one after the other, and what is left.
func TestNginxAgainstNginx(t *testing.T) {
	nginx := testenv.Command(t, "nginx", "nginx")
	for _, c := range nginxCases {
		t.Run(c.name, func(t *testing.T) {
			dir := tempDir(t)
			site := filepath.Join(dir, "site.conf")
			main := "events {}\nhttp {\n    server {\n        listen unix:" + filepath.Join(dir, "s.sock") + ";\n        include " + site + ";\n    }\n}\n"
			if c.http {
				main = "events {}\nhttp {\n    include " + site + ";\n}\n"
			}
			conf := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(text []byte) (string, bool) {
				t.Helper()
				if err := os.WriteFile(site, text, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(nginx, "-t", "-q", "-p", dir+"/", "-c", conf).CombinedOutput()
				return string(out), err == nil
			}
			ds, spans, err := nginxSpans([]byte(c.in))
			text := []byte(c.in)
			for i, d := range ds {
				if !strings.HasPrefix(d.Name, "probe") || text[spans[i].start] == ' ' {
					continue
				}
				want := fmt.Sprintf(`unknown directive "%s" in %s:%d`, d.Name, site, d.Line)
				if out, ok := run(text); ok || !strings.Contains(out, want) {
					t.Errorf("nginx -t: want %s, got (ok=%v)\n%s", want, ok, out)
				}
				blank(text, spans[i])
			}
			if err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatal(err)
				}
				want := fmt.Sprintf("%s in %s:%d", se.Msg, site, se.Line)
				if out, ok := run(text); ok || !strings.Contains(out, want) {
					t.Errorf("nginx -t: want the error %q, got (ok=%v)\n%s", want, ok, out)
				}
				return
			}
			out, ok := run(text)
			if c.final == "" {
				if !ok {
					t.Errorf("nginx -t refused the file once its probes were blanked out:\n%s\n%s", text, out)
				}
				return
			}
			want := strings.ReplaceAll(c.final, "SITE", site)
			if ok || !strings.Contains(out, want) {
				t.Errorf("nginx -t: want %q, got (ok=%v)\n%s", want, ok, out)
			}
			// nginx prints the argument of a duplicate location as it
			// stored it: it must be the one the parser found.
			if m := regexp.MustCompile(`(?s)duplicate location "(.*)" in ` + regexp.QuoteMeta(site) + `:(\d+)`).FindStringSubmatch(out); m != nil {
				found := false
				for _, d := range ds {
					if d.Name == "location" && fmt.Sprint(d.Line) == m[2] {
						found = true
						if got := d.Args[len(d.Args)-1]; got != m[1] {
							t.Errorf("nginx stored the location at line %s as %q, the parser %q", m[2], m[1], got)
						}
					}
				}
				if !found {
					t.Errorf("nginx names a location at line %s, the parser has none", m[2])
				}
			}
		})
	}
}
