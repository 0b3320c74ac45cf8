package templates

import (
	"reflect"
	"strings"
	"testing"
	"text/template/parse"
)

// escapersOf are the functions each host template may write values
// with: the one rule of its output syntax.
var escapersOf = map[string][]string{
	NginxSite:      {"nginx", "bytes"},
	Apache2Site:    {"apache", "bytes"},
	UWSGIApp:       {"uwsgi", "uwsgiOption"},
	GunicornSocket: {"unit"},
	GunicornUnit:   {"unit", "systemd"},
	GunicornInit:   {"shell", "shellComment"},
	BalancerSite:   {"nginx", "hostPort"},
}

// TestEveryValueIsEscaped reads the templates' own parse trees: every
// {{…}} that writes something either ends in the escaper of its file's
// syntax or writes a number. A new field written bare fails here.
func TestEveryValueIsEscaped(t *testing.T) {
	numbers := map[string]bool{}
	st := reflect.TypeOf(Site{})
	for i := 0; i < st.NumField(); i++ {
		switch st.Field(i).Type.Kind() {
		case reflect.Int, reflect.Bool:
			numbers[st.Field(i).Name] = true
		}
	}
	for name, allowed := range escapersOf {
		tmpl := all.Lookup(name)
		if tmpl == nil {
			t.Fatalf("no template %s", name)
		}
		trees := []*parse.Tree{tmpl.Tree}
		// Templates defined inside a file ({{define}}) belong to it.
		for _, other := range all.Templates() {
			if other.Tree != nil && other.ParseName == name && other.Name() != name {
				trees = append(trees, other.Tree)
			}
		}
		for _, tree := range trees {
			walk(tree.Root, func(a *parse.ActionNode) {
				if len(a.Pipe.Decl) > 0 {
					return // a variable declaration writes nothing
				}
				cmds := a.Pipe.Cmds
				last := cmds[len(cmds)-1]
				if id, ok := last.Args[0].(*parse.IdentifierNode); ok && contains(allowed, id.Ident) {
					return
				}
				if f, ok := last.Args[0].(*parse.FieldNode); ok && len(cmds) == 1 && len(last.Args) == 1 && numbers[f.Ident[len(f.Ident)-1]] {
					return
				}
				t.Errorf("%s line %s: %s writes a value without %s", name, position(tree, a), a, strings.Join(allowed, " or "))
			})
		}
	}
}

func walk(n parse.Node, fn func(*parse.ActionNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		fn(n)
	case *parse.IfNode:
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.RangeNode:
		walk(n.List, fn)
		walk(n.ElseList, fn)
	case *parse.WithNode:
		walk(n.List, fn)
		walk(n.ElseList, fn)
	}
}

func position(tree *parse.Tree, n parse.Node) string {
	loc, _ := tree.ErrorContext(n)
	return loc
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTemplatesRefuseInjection renders the host templates with the
// values that once passed nginx -t, apache2ctl configtest, uwsgi
// --strict and systemd-analyze verify with a directive of their own:
// every template whose syntax cannot hold the value must refuse to
// render it, so nothing reaches the host. (The init script quotes such
// values as one word instead; the fuzz test of the targets package
// proves that for every template.)
func TestTemplatesRefuseInjection(t *testing.T) {
	web := []string{NginxSite, Apache2Site}
	hostile := []struct {
		name      string
		set       func(*Site)
		refusedBy []string
	}{
		{"command substitution in the base", func(s *Site) { s.Base = "/srv/www$(touch /tmp/pwn)/shop" }, web},
		{"nginx location through the base", func(s *Site) { s.Base = "/srv/www;\n    location /x/ { alias /etc/; }\n    location /y {" }, web},
		{"Apache directive through the base", func(s *Site) { s.Base = "/srv/www\n    Alias /etc/ /etc/\n" }, web},
		{"systemd directive through the source folder", func(s *Site) { s.Src = "/srv/www/shop/current/src\nExecStartPre=/bin/touch /tmp/pwn" }, []string{UWSGIApp, GunicornUnit}},
		{"uWSGI directive through the environment file's path", func(s *Site) {
			s.EnvironmentFile = "/srv/www/shop/environment.json\nexec-as-root = touch /tmp/pwn"
		}, []string{UWSGIApp, GunicornUnit}},
		{"uWSGI expansion through the environment file's path", func(s *Site) { s.EnvironmentFile = "/srv/@(exec://id)/environment.json" }, []string{UWSGIApp}},
		{"socket group with a space", func(s *Site) { s.WebGroup = "www-data root" }, []string{GunicornSocket}},
		{"quote through the url", func(s *Site) { s.URL = `shop.example.com"` }, web},
		{"uWSGI option on two lines", func(s *Site) { s.UWSGIOptions = []string{"cheaper = 1\nexec-as-root = id"} }, []string{UWSGIApp}},
		{"systemd specifier through the launcher", func(s *Site) { s.Launcher = "/usr/local/lib/%h/run.py" }, []string{GunicornUnit}},
		{"newline through the project in the init script's header", func(s *Site) { s.Project = "shop\ntouch /tmp/pwn" }, append(web, GunicornInit, GunicornUnit, GunicornSocket, UWSGIApp)},
	}
	for _, h := range hostile {
		for _, name := range h.refusedBy {
			site := sample("gunicorn", true)
			if name == UWSGIApp {
				site = sample("uwsgi", true)
			}
			if _, err := Render(name, site); err != nil {
				t.Fatalf("%s with harmless values: %v", name, err)
			}
			h.set(&site)
			if got, err := Render(name, site); err == nil {
				t.Errorf("%s: %s rendered:\n%s", h.name, name, got)
			}
		}
	}
}

func TestEscapersRefuseWhatTheirSyntaxCannotHold(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) (string, error)
		bad  []string
		good map[string]string
	}{
		{"nginx", nginxWord, []string{"a b", "a;b", "a{", "a}", "a#b", `a"b`, "a'b", "a$b", "a\\b", "a\nb", ""}, map[string]string{"/srv/www/shop": "/srv/www/shop", "shop.example.com": "shop.example.com"}},
		{"apache", apacheWord, []string{"a b", "${X}", "<Directory", "a#b", `a"b`, "a\\", ""}, map[string]string{"/srv/x": "/srv/x"}},
		{"unit", systemdWord, []string{"a b", "%h", "$X", "${X}", `a"`, "a\\b", "a\nb", ""}, map[string]string{"/srv/x/src": "/srv/x/src"}},
		{"uwsgi", uwsgiValue, []string{"a\nb", "$(HOME)", "@(/etc/passwd)", "%(chdir)", "%%(chdir)", " a", "a ", "a\rb"}, map[string]string{"100%": "100%%", "a b": "a b", "": ""}},
		{"systemd", systemdValue, []string{"a\nb", "a\x00b", "\x1b[31m"}, map[string]string{`a "b" \`: `"a \"b\" \\"`, "%h": `"%%h"`, "$X": `"$X"`}},
		{"shell", shellWord, []string{"a\x00b"}, map[string]string{"a b": "'a b'", "it's": `'it'"'"'s'`, "plain": "plain"}},
		{"shellComment", shellComment, []string{"a\nrm -rf /", "a b"}, map[string]string{"gunicorn-shop": "gunicorn-shop"}},
	}
	for _, tt := range tests {
		for _, v := range tt.bad {
			if got, err := tt.fn(v); err == nil {
				t.Errorf("%s(%q) = %q, want an error", tt.name, v, got)
			}
		}
		for in, want := range tt.good {
			if got, err := tt.fn(in); err != nil || got != want {
				t.Errorf("%s(%q) = %q, %v; want %q", tt.name, in, got, err, want)
			}
		}
	}
	if _, err := uwsgiOption("cheaper = 1\nexec-as-root = id"); err == nil {
		t.Error("uwsgiOption accepted two lines")
	}
	if got, err := uwsgiOption("smart-attach-daemon2=/run/x.pid celery -A shop worker"); err != nil || got != "smart-attach-daemon2 = /run/x.pid celery -A shop worker" {
		t.Errorf("uwsgiOption = %q, %v", got, err)
	}
}
