package targets

import (
	"context"
	"errors"
	"reflect"
	"strings"
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

// TestPackagesStepOnAFakeHost checks what the packages step installs,
// and how: djship's packages without recommendations, the site's with
// them, and the recommendations a site package installed earlier lacks,
// whose failure is a warning, not a failed run.
func TestPackagesStepOnAFakeHost(t *testing.T) {
	own := "acl installed \ncurl installed \nnginx installed \nopenssl installed \npython3-venv installed \nsqlite3 installed \nunzip installed \nuwsgi installed \nuwsgi-plugin-python3 installed \niproute2 installed \n"
	installFails := errors.New("E: Package 'libjs-jquery' has no installation candidate")
	cases := []struct {
		name       string
		installed  string
		installErr error
		want       []string // the install-packages arguments, one line per run
		changed    bool
		warning    bool
	}{
		{"all there", own + "python3-django installed libjs-jquery\nlibjs-jquery installed \n", nil, nil, false, false},
		{"the site's package missing", own, nil, []string{"recommends python3-django"}, true, false},
		{"djship's and the site's missing", "", nil, []string{"no-recommends acl curl iproute2 nginx openssl python3-venv sqlite3 unzip uwsgi uwsgi-plugin-python3", "recommends python3-django"}, true, false},
		{"a recommendation missing", own + "python3-django installed libjs-jquery\n", nil, []string{"no-recommends libjs-jquery"}, true, false},
		{"a recommendation that cannot be installed", own + "python3-django installed libjs-jquery\n", installFails, []string{"no-recommends libjs-jquery"}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHost{rules: []fakeRule{
				{script: "installed-packages", contains: "installed-packages libjs-jquery", stdout: onlyLine(c.installed, "libjs-jquery ")},
				{script: "installed-packages", stdout: c.installed},
				{script: "install-packages", err: c.installErr},
			}}
			d, out := fakeDeploy(h, 3)
			d.Settings.Webserver, d.Settings.AppServer, d.Settings.Database.Engine = "nginx", "uwsgi", "sqlite"
			d.Settings.Packages = []string{"python3-django"}
			changed, err := packagesStep{}.Run(context.Background(), d)
			if err != nil {
				t.Fatalf("packages: %v\n%s", err, out)
			}
			var got []string
			for _, line := range h.scripts("install-packages") {
				_, args, _ := strings.Cut(line, "\n' install-packages ")
				got = append(got, strings.ReplaceAll(args, "'", ""))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("installed %q, want %q", got, c.want)
			}
			if changed != c.changed {
				t.Errorf("changed = %v, want %v", changed, c.changed)
			}
			if warned := strings.Contains(out.String(), "warning: could not install libjs-jquery, which the site's packages recommend"); warned != c.warning {
				t.Errorf("warning %v, want %v:\n%s", warned, c.warning, out)
			}
		})
	}
}

// onlyLine is the line of out that starts with prefix, or "".
func onlyLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l + "\n"
		}
	}
	return ""
}
