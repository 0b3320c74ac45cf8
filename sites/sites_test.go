package sites

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/djship/djship/internal/golden"
)

// TestInvalidSiteFiles checks the exact message a user sees for every
// class of mistake: each testdata/invalid/NAME.yaml has its NAME.golden.
func TestInvalidSiteFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) succeeded; want an error", f)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error is %T, want *sites.Error: %v", err, err)
			}
			golden.Check(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

func TestEveryProblemNamesFileAndLine(t *testing.T) {
	_, err := Load("testdata/invalid/bad-values.yaml")
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("want *Error, got %v", err)
	}
	if len(e.Problems) < 20 {
		t.Errorf("got %d problems, want every mistake of bad-values.yaml reported at once (at least 20)", len(e.Problems))
	}
	for _, line := range strings.Split(err.Error(), "\n")[1:] {
		if !strings.HasPrefix(strings.TrimSpace(line), "testdata/invalid/bad-values.yaml:") {
			t.Errorf("line without file:line: %q", line)
		}
	}
	for i := 1; i < len(e.Problems); i++ {
		if e.Problems[i].Line < e.Problems[i-1].Line {
			t.Errorf("problems not in line order: %v", e.Problems)
		}
	}
}

func TestValidSiteDefaultsAndOverrides(t *testing.T) {
	s, err := Load("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.EnvironmentNames(); !reflect.DeepEqual(got, []string{"demo", "production", "staging"}) {
		t.Errorf("environments = %v", got)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"revision pattern default", s.Settings.RevisionPattern, "shop-r${REVISION}.tar.gz"},
		{"python default", s.Settings.Python, "/usr/bin/python3"},
		{"keep releases default", s.Settings.KeepReleases, 5},
		{"webserver default", s.Settings.Webserver, "nginx"},
		{"check command default", s.Settings.Web.CheckCommand, "/usr/sbin/nginx"},
		{"app user default", s.Settings.App.User, "shop"},
		{"app group default", s.Settings.App.Group, "shop"},
		{"database default", s.Settings.Database.Engine, "sqlite"},
		{"sqlite path default", s.Settings.Database.Path, "db.sqlite3"},
		{"root is the folder holding sites/ or the file's folder", s.Root, mustAbs(t, "testdata/valid")},
		{"production host", s.Environments["production"].Hosts[0].String(), "deploy@shop.example.com:2222"},
		{"ipv6 host", s.Environments["production"].Hosts[1].String(), "[2001:db8::1]"},
		{"environment override", s.Environments["staging"].Settings.Webserver, "apache2"},
		{"check command follows the webserver", s.Environments["staging"].Settings.Web.CheckCommand, "/usr/sbin/apache2ctl"},
		{"postgres defaults", s.Environments["staging"].Settings.Database, Database{Engine: "postgres", Name: "shop", User: "shop", Port: 5432, PasswordSecret: "DATABASE_PASSWORD"}},
		{"host override", s.Environments["staging"].Hosts[0].Settings.App.Workers, 8},
		{"host keeps environment settings", s.Environments["staging"].Hosts[0].Settings.AppServer, "gunicorn"},
		{"environment keeps the shared default", s.Environments["staging"].Settings.App.Workers, 2},
		{"local connection gets localhost", s.Environments["demo"].Hosts[0].Address, "localhost"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestExampleSiteLoads(t *testing.T) {
	s, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"production", "staging", "demo"} {
		if _, err := s.Environment(env); err != nil {
			t.Error(err)
		}
	}
	if s.Environments["demo"].Settings.Connection != "local" {
		t.Error("the demo environment must use the local connection")
	}
	if _, err := s.Environment("prod"); err == nil || !strings.Contains(err.Error(), "use one of demo, production, staging") {
		t.Errorf("unknown environment error = %v", err)
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		in      string
		want    Host
		problem string
	}{
		{"deploy@www.example.com:22", Host{User: "deploy", Address: "www.example.com", Port: 22}, ""},
		{"www.example.com", Host{Address: "www.example.com"}, ""},
		{"10.0.0.5:2222", Host{Address: "10.0.0.5", Port: 2222}, ""},
		{"ops@[::1]:22", Host{User: "ops", Address: "::1", Port: 22}, ""},
		{"www.example.com:", Host{}, `port "" must be a number from 1 to 65535`},
		{"www.example.com:0", Host{}, `port "0" must be a number from 1 to 65535`},
		{"-oProxyCommand=x", Host{}, `"-oProxyCommand=x" is not a host name or IP address`},
		{"a b", Host{}, `"a b" is not a host name or IP address`},
		{"[::1", Host{}, "missing ] after an IPv6 address"},
		{"", Host{}, "empty host: write user@host:port"},
	}
	for _, tt := range tests {
		got, problem := ParseHost(tt.in)
		if problem != tt.problem {
			t.Errorf("ParseHost(%q) problem = %q, want %q", tt.in, problem, tt.problem)
			continue
		}
		if problem == "" && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHost(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("project: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Find(dir, ""); err == nil || !strings.Contains(err.Error(), "no site file in") {
		t.Errorf("empty folder: %v", err)
	}
	write("shop.yaml")
	if p, err := Find(dir, ""); err != nil || p != filepath.Join(dir, "shop.yaml") {
		t.Errorf("one site: %q, %v", p, err)
	}
	write("blog.yaml")
	if _, err := Find(dir, ""); err == nil || !strings.Contains(err.Error(), "several sites (blog, shop): choose one with SITE=<name>") {
		t.Errorf("two sites: %v", err)
	}
	if p, err := Find(dir, "blog"); err != nil || p != filepath.Join(dir, "blog.yaml") {
		t.Errorf("SITE=blog: %q, %v", p, err)
	}
	if _, err := Find(dir, "wiki"); err == nil || !strings.Contains(err.Error(), "the sites are blog, shop") {
		t.Errorf("SITE=wiki: %v", err)
	}
	if _, err := Find(filepath.Join(dir, "missing"), ""); err == nil || !strings.Contains(err.Error(), "run djship from the project root") {
		t.Errorf("no folder: %v", err)
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"webserver", "url", "root", "project"}
	tests := map[string]string{"webservr": "webserver", "URL": "url", "rot": "root", "completely_else": ""}
	for in, want := range tests {
		if got := nearest(in, keys); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPatternProblems(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"shop-r${REVISION}.tar.gz", true},
		{"shop-${CI_COMMIT_SHORT_SHA}.tar.bz2", true},
		{"shop-${BUILD}-${REVISION}.tar.zst", true},
		{"shop.tar.gz", false},
		{"shop-${REVISION}.zip", false},
		{"shop-${REVISION.tar.gz", false},
		{"shop-$REVISION.tar.gz", false},
		{"../shop-${REVISION}.tar.gz", false},
		{"${REVISION}.tar.gz", true},
		{".hidden-${REVISION}.tar.gz", false},
	}
	for _, tt := range tests {
		problems := PatternProblems(tt.pattern)
		if (len(problems) == 0) != tt.ok {
			t.Errorf("PatternProblems(%q) = %v, want ok=%v", tt.pattern, problems, tt.ok)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestProcessCommand(t *testing.T) {
	for command, want := range map[string]string{
		"celery -A shop worker --loglevel info": "celery|-A|shop|worker|--loglevel|info",
		`python manage.py rqworker "high prio"`: "python|manage.py|rqworker|high prio",
		`worker 'it'\''s'`:                      "worker|it's",
		"/usr/bin/env X=1 prog":                 "/usr/bin/env|X=1|prog",
	} {
		words, err := ProcessCommand(command)
		if err != nil || strings.Join(words, "|") != want {
			t.Errorf("ProcessCommand(%q) = %q, %v; want %s", command, words, err, want)
		}
	}
	for _, command := range []string{"", "  ", "celery $(id)", "celery `id`", "celery -A $APP", "worker > /tmp/x", "a | b", "a; b", "a && b", "rm *.pyc", "~/bin/x", "x\ny", "say {a,b}", `unclosed "quote`} {
		if words, err := ProcessCommand(command); err == nil {
			t.Errorf("ProcessCommand(%q) = %q, want a refusal", command, words)
		}
	}
}

func TestFleetRolesAndDatabaseHost(t *testing.T) {
	s, err := Load("testdata/valid/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := s.Environments["production"]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"roles as written", env.Hosts[3].Roles, []string{"worker", "cron"}},
		{"a host without roles is web and worker", env.Hosts[5].Roles, []string{RoleWeb, RoleWorker}},
		{"lb is no app host", env.Hosts[0].App(), false},
		{"worker is an app host", env.Hosts[3].App(), true},
		{"the hosts reach the db host", env.Hosts[1].Settings.Database.Host, "10.0.0.30"},
		{"so does the environment", env.Settings.Database.Host, "10.0.0.30"},
		{"over TLS", env.Hosts[1].Settings.Database.SSLMode, "require"},
		{"migrate host", env.Settings.Fleet.MigrateHost, "10.0.0.12"},
		{"migrate host matches its address", env.Hosts[2].Matches("10.0.0.12"), true},
		{"and its full form", env.Hosts[2].Matches("deploy@10.0.0.12"), true},
		{"rolling", env.Settings.Fleet.Rolling, Rolling{Batch: "25%", Pause: 5}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestBatchSize(t *testing.T) {
	tests := []struct {
		batch string
		hosts int
		want  int
		bad   bool
	}{
		{"", 8, 8, false},
		{"25%", 8, 2, false},
		{"25%", 3, 1, false},
		{"30%", 8, 3, false},
		{"100%", 5, 5, false},
		{"1%", 5, 1, false},
		{"2", 8, 2, false},
		{"20", 8, 8, false},
		{"0", 8, 0, true},
		{"0%", 8, 0, true},
		{"101%", 8, 0, true},
		{"-1", 8, 0, true},
		{"1.5", 8, 0, true},
		{"02", 8, 0, true},
		{"half", 8, 0, true},
	}
	for _, tt := range tests {
		got, err := BatchSize(tt.batch, tt.hosts)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("BatchSize(%q, %d) = %d, %v; want %d (error %v)", tt.batch, tt.hosts, got, err, tt.want, tt.bad)
		}
	}
}
