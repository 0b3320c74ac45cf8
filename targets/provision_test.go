package targets

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/sites"
)

// provisionCase is one web server and application server pair, reached
// over SSH or the local connection.
type provisionCase struct {
	web, app, connection string
}

func (c provisionCase) String() string { return c.web + "+" + c.app + "/" + c.connection }

// testSite writes a site file for one case: its own project, ports and
// deployment root, self-signed TLS, and the test sshd for ssh cases.
func testSite(t *testing.T, c provisionCase, n int, sshd *testenv.SSHD) *sites.Site {
	t.Helper()
	project := fmt.Sprintf("djprov%d", n)
	root := filepath.Join("/srv", "djship-test-"+project)
	os.RemoveAll(root)
	hosts := "    connection: local"
	ssh := ""
	if c.connection == "ssh" {
		hosts = fmt.Sprintf("    hosts: [%s@127.0.0.1:%d]", testenv.SudoUser, sshd.Port)
		ssh = fmt.Sprintf("ssh: {identity: %s, known_hosts: %s}\n", testenv.TestKeys().Sudo, sshd.KnownHosts)
	}
	yaml := fmt.Sprintf(`project: %s
url: %s.test
root: %s
source: {path: src}
django: {source_folder: ., settings_folder: hello, settings_module: hello.settings}
webserver: %s
web: {http_port: %d, https_port: %d}
app_server: %s
tls: {certificate: self-signed}
%senvironments:
  test:
%s
`, project, project, root, c.web, 18080+n, 18440+n, c.app, ssh, hosts)
	site := writeSite(t, t.TempDir(), project, yaml)
	t.Cleanup(func() { removeSite(site) })
	return site
}

// removeSite takes a test site off the machine again.
func removeSite(site *sites.Site) {
	p := site.Settings.Instance
	script := fmt.Sprintf(`
for i in %[1]s %[1]s.a %[1]s.b; do /etc/init.d/uwsgi stop $i >/dev/null 2>&1; done
[ -x /etc/init.d/gunicorn-%[1]s ] && /etc/init.d/gunicorn-%[1]s stop >/dev/null 2>&1
rm -f /etc/uwsgi/apps-enabled/%[1]s.ini /etc/uwsgi/apps-available/%[1]s.ini /etc/init.d/gunicorn-%[1]s
rm -f /etc/uwsgi/apps-enabled/%[1]s.[ab].ini /etc/uwsgi/apps-available/%[1]s.[ab].ini
for w in nginx apache2; do
  rm -f /etc/$w/sites-enabled/%[1]s.conf /etc/$w/sites-available/%[1]s.conf /etc/$w/ssl/%[1]s.crt /etc/$w/ssl/%[1]s.key
  service $w status >/dev/null 2>&1 && service $w reload >/dev/null 2>&1
done
# Only this machine's processes: a machine of another test may run its
# own under the same user number.
pkill --ns $$ --nslist pid -u %[1]s >/dev/null 2>&1; sleep 0.2; pkill -9 --ns $$ --nslist pid -u %[1]s >/dev/null 2>&1
userdel %[1]s >/dev/null 2>&1; groupdel %[1]s >/dev/null 2>&1
rm -rf %[2]s
true`, p, site.Settings.Root)
	exec.Command("sh", "-c", script).Run()
}

// stopWebServers stops nginx and Apache, which tests start on the ports
// they share, so that what runs next finds the ports free.
func stopWebServers() {
	exec.Command("service", "nginx", "stop").Run()
	exec.Command("service", "apache2", "stop").Run()
}

// needStack stops the test unless the web and app servers are installed.
func needStack(t testing.TB) {
	testenv.NeedRoot(t)
	testenv.Command(t, "/usr/sbin/nginx", "nginx")
	testenv.Command(t, "/usr/sbin/apache2ctl", "apache2")
	testenv.Command(t, "uwsgi", "uwsgi uwsgi-plugin-python3")
	testenv.Command(t, "gunicorn", "gunicorn")
	testenv.Command(t, "setfacl", "acl")
	testenv.Command(t, "/usr/bin/python3", "python3-venv")
}

// needExample stops the test unless the whole stack and Debian's Django
// are here, and stops the web servers when the test ends.
func needExample(t testing.TB) {
	t.Helper()
	needStack(t)
	testenv.Django(t)
	t.Cleanup(stopWebServers)
}

// placeRelease puts a minimal WSGI application where a release would be
// and points current at it, as the upgrade sequence will.
func placeRelease(t *testing.T, site *sites.Site) {
	t.Helper()
	p := NewPaths(site.Settings)
	rel := filepath.Join(p.Releases, "r1")
	app := filepath.Join(rel, "src", "hello")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app, "__init__.py"), nil, 0o644)
	os.WriteFile(filepath.Join(app, "wsgi.py"), []byte(`import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("hello from " + os.environ["DJANGO_SETTINGS_MODULE"]).encode()]
`), 0o644)
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--system-site-packages", filepath.Join(rel, "venv")).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	if err := os.Symlink("releases/r1", p.Current); err != nil {
		t.Fatal(err)
	}
}

// get fetches a URL of the site through the web server on 127.0.0.1,
// with the site's host name, retrying while the app server starts.
// siteIP is the address of the test environment's first host: a booted
// machine's, or this machine's loopback.
func siteIP(site *sites.Site) string {
	if env := site.Environments["test"]; env != nil && len(env.Hosts) > 0 {
		if a := env.Hosts[0].Address; a != "localhost" && a != "127.0.0.1" {
			return a
		}
	}
	return "127.0.0.1"
}

func get(t *testing.T, site *sites.Site, scheme string) (int, string, http.Header) {
	t.Helper()
	port := site.Settings.Web.HTTPSPort
	if scheme == "http" {
		port = site.Settings.Web.HTTPPort
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: site.Settings.URL},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(siteIP(site), strconv.Itoa(port)))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := fmt.Sprintf("%s://%s:%d/", scheme, site.Settings.URL, port)
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable {
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			continue
		}
		return resp.StatusCode, string(body), resp.Header
	}
	t.Fatalf("GET %s: %s", url, last)
	return 0, "", nil
}

// pidOf reads a master's pid file.
func pidOf(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return strings.TrimSpace(string(data))
}

func masterPIDs(t *testing.T, site *sites.Site) (web, app string) {
	s := site.Settings
	webPID := "/run/nginx.pid"
	if s.Webserver == "apache2" {
		webPID = "/run/apache2/apache2.pid"
	}
	// The live uWSGI instance is the one app.sock leads to.
	sock, _ := os.Readlink(NewPaths(s).AppSocket)
	appPID := path.Join(path.Dir(sock), "pid")
	if s.AppServer == "gunicorn" {
		appPID = "/run/gunicorn-" + s.Project + "/pid"
	}
	return pidOf(t, webPID), pidOf(t, appPID)
}

// canRead reports whether user can read a file.
func canRead(user, file string) bool {
	return exec.Command("runuser", "-u", user, "--", "cat", file).Run() == nil
}

func TestProvision(t *testing.T) {
	needStack(t)
	sshd := testenv.StartSSHD(t)
	t.Cleanup(stopWebServers)
	cases := []provisionCase{
		{"nginx", "uwsgi", "ssh"},
		{"nginx", "gunicorn", "local"},
		{"apache2", "uwsgi", "local"},
		{"apache2", "gunicorn", "ssh"},
	}
	for n, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			other := map[string]string{"nginx": "apache2", "apache2": "nginx"}[c.web]
			exec.Command("service", other, "stop").Run() // both want port 80
			site := testSite(t, c, n, sshd)
			ctx := context.Background()
			secrets := map[string]string{"SECRET_KEY": "provision-test-secret-value"}
			var out bytes.Buffer
			provision := func() error {
				out.Reset()
				err := Provision(ctx, site, "test", Options{Out: &out, Secrets: secrets})
				t.Logf("provision output:\n%s", out.String())
				return err
			}

			// A fresh host: everything is configured; the app server waits
			// for a release.
			if err := provision(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "no release is live yet") {
				t.Error("the first provision did not say the app server waits for a release")
			}
			placeRelease(t, site)

			// With a release live, the app server starts and the page answers
			// through the web server over https.
			if err := provision(); err != nil {
				t.Fatal(err)
			}
			status, body, header := get(t, site, "https")
			if status != 200 || body != "hello from hello.settings" {
				t.Fatalf("https: %d %q", status, body)
			}
			if !strings.HasPrefix(header.Get("Strict-Transport-Security"), "max-age=") {
				t.Errorf("no HSTS header: %v", header)
			}
			if status, _, header := get(t, site, "http"); status != 301 || !strings.HasPrefix(header.Get("Location"), "https://") {
				t.Errorf("http: %d to %q, want a redirect to https", status, header.Get("Location"))
			}

			// A second run changes nothing and restarts nothing.
			webPID, appPID := masterPIDs(t, site)
			start := time.Now()
			if err := provision(); err != nil {
				t.Fatal(err)
			}
			t.Logf("no-op re-provision over %s: %v", c.connection, time.Since(start).Round(time.Millisecond))
			if !strings.Contains(out.String(), "\n0 changed\n") {
				t.Errorf("a second run changed something:\n%s", out.String())
			}
			if w, a := masterPIDs(t, site); w != webPID || a != appPID {
				t.Errorf("master PIDs changed: web %s -> %s, app %s -> %s", webPID, w, appPID, a)
			}

			// Permissions: the TLS key is the web server's, the secret file
			// the application's, and nobody else reads either.
			w := NewDeploy(site, nil, site.Settings, nil, nil).web()
			key, secret := w.keyFile(site.Settings.Project), NewPaths(site.Settings).SecretPy
			app := site.Settings.App.User
			for _, check := range []struct {
				user, file string
				want       bool
			}{
				{app, key, false}, {"www-data", secret, false}, {"nobody", key, false}, {"nobody", secret, false},
				{app, secret, true}, {"www-data", key, true},
			} {
				if got := canRead(check.user, check.file); got != check.want {
					t.Errorf("%s can read %s: %v, want %v", check.user, check.file, got, check.want)
				}
			}

			for _, f := range []string{secret, NewPaths(site.Settings).Environment} {
				if out, err := exec.Command("stat", "-c", "%a %U %G", f).Output(); err != nil || strings.TrimSpace(string(out)) != "640 root "+app {
					t.Errorf("%s: %q, %v; want 640 root %s", f, out, err, app)
				}
			}
			if strings.Contains(out.String(), secrets["SECRET_KEY"]) {
				t.Error("a secret value reached the output")
			}

			// plan after a change shows the diff and changes nothing.
			env := site.Environments["test"]
			env.Hosts[0].Settings.App.Workers = 3
			deploys, err := Plan(ctx, site, "test", Options{Out: io.Discard, Secrets: secrets})
			if err != nil {
				t.Fatal(err)
			}
			planned := strings.Join(deploys[0].Planned, "\n")
			wantDiff := map[string]string{"uwsgi": "+workers = 3", "gunicorn": "--workers 3"}[c.app]
			if !strings.Contains(planned, wantDiff) {
				t.Errorf("plan does not show %q:\n%s", wantDiff, planned)
			}
			if strings.Contains(planned, "provision-test-secret-value") {
				t.Error("the plan shows a secret")
			}
			env.Hosts[0].Settings.App.Workers = 2
			if err := provision(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "\n0 changed\n") {
				t.Errorf("plan changed something:\n%s", out.String())
			}

			if c.app != "uwsgi" {
				return
			}
			// A broken extra option is refused by uWSGI's own check; the old
			// configuration stays and the site keeps serving.
			ini := "/etc/uwsgi/apps-available/" + site.Settings.Project + ".a.ini"
			before, _ := os.ReadFile(ini)
			env.Hosts[0].Settings.App.UWSGIOptions = []string{"cheapr = 1"}
			err = provision()
			if err == nil || !strings.Contains(err.Error(), "unknown config directive: cheapr") || !strings.Contains(err.Error(), "the old one stays active") {
				t.Errorf("broken option: %v", err)
			}
			if strings.Contains(err.Error()+out.String(), secrets["SECRET_KEY"]) {
				t.Error("a secret value reached the error or the output")
			}
			if after, _ := os.ReadFile(ini); !bytes.Equal(before, after) {
				t.Error("the broken configuration replaced the old one")
			}
			if status, _, _ := get(t, site, "https"); status != 200 {
				t.Errorf("after a refused change the site answers %d", status)
			}
		})
	}
}

// TestWebConfigValidators feeds broken site files to the real nginx and
// Apache checks: the error carries the validator's message.
func TestWebConfigValidators(t *testing.T) {
	needStack(t)
	for _, web := range []string{"nginx", "apache2"} {
		t.Run(web, func(t *testing.T) {
			site := testSite(t, provisionCase{web, "uwsgi", "local"}, 9, nil)
			d := NewDeploy(site, nil, site.Settings, nil, nil)
			hosts, err := Connect(context.Background(), site, site.Environments["test"], ConnectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer hosts[0].Close()
			d.Host = hosts[0]
			err = d.testWebConfig(context.Background(), d.web(), site.Settings.Project, site.Settings.Web.CheckCommand, []byte("server { listen 1234; bogus_directive on; }\n<Bogus>\n"))
			want := map[string]string{"nginx": `unknown directive "bogus_directive"`, "apache2": "Bogus"}[web]
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want the validator's %q", err, want)
			}
		})
	}
}
