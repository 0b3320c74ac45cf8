package targets

import (
	"reflect"
	"testing"
)

func TestRecommendations(t *testing.T) {
	out := "python3-django installed libjs-jquery\n" +
		"nginx installed \n" +
		"python3-foo installed libjs-a (>= 1.2), libjs-b | libjs-c, gettext:any, bad$name\n" +
		"python3-gone deinstalled libjs-x\n" +
		"libjs-c:all installed \n"
	installed, recommends := parseInstalled(out)
	for name, want := range map[string]bool{"python3-django": true, "nginx": true, "python3-foo": true, "libjs-c": true, "python3-gone": false} {
		if installed[name] != want {
			t.Errorf("installed[%s] = %v, want %v", name, installed[name], want)
		}
	}
	wantFoo := [][]string{{"libjs-a"}, {"libjs-b", "libjs-c"}, {"gettext"}}
	if got := recommends["python3-foo"]; !reflect.DeepEqual(got, wantFoo) {
		t.Errorf("python3-foo recommends %q, want %q", got, wantFoo)
	}
	if got := recommends["nginx"]; len(got) != 0 {
		t.Errorf("nginx recommends %q", got)
	}
	cases := []struct {
		name      string
		wanted    [][]string
		installed map[string]bool
		want      []string
	}{
		{"nothing installed", [][]string{{"libjs-jquery"}}, nil, []string{"libjs-jquery"}},
		{"met by a later choice", [][]string{{"libjs-b", "libjs-c"}}, map[string]bool{"libjs-c": true}, nil},
		{"the first choice of an unmet one", [][]string{{"libjs-b", "libjs-c"}}, nil, []string{"libjs-b"}},
		{"named twice, listed once", [][]string{{"libjs-jquery"}, {"libjs-jquery"}}, nil, []string{"libjs-jquery"}},
		{"all met", [][]string{{"a"}, {"b"}}, map[string]bool{"a": true, "b": true}, nil},
	}
	for _, c := range cases {
		if got := unmet(c.wanted, c.installed); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: unmet = %q, want %q", c.name, got, c.want)
		}
	}
}
