package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/djship/djship/sites"
)

// onEnvironment is the site as one of its environments sees it: its
// settings at the top, as get and removeSite read them.
func onEnvironment(t *testing.T, site *sites.Site, env string) *sites.Site {
	t.Helper()
	e, err := site.Environment(env)
	if err != nil {
		t.Fatal(err)
	}
	one := *site
	one.Settings = e.Hosts[0].Settings
	return &one
}

// shipTo packages the source as revision and ships it to env.
func shipTo(t *testing.T, site *sites.Site, env, revision string) (string, error) {
	t.Helper()
	a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = Ship(context.Background(), site, env, a.Path, Options{Out: &out, Secrets: shipSecrets})
	return out.String(), err
}

// TestTwoEnvironmentsOnOneHost runs production and staging of one project
// on one machine (other roots, ports, urls, instance and application
// server), under load on production while staging ships; then a second
// site file of the same project name, which would take production's
// files over, is refused and changes nothing.
func TestTwoEnvironmentsOnOneHost(t *testing.T) {
	needExample(t)
	exec.Command("service", "apache2", "stop").Run()
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "example"), filepath.Join(dir, "src"))
	environment := func(name, instance, app string, port int) string {
		root := "/srv/djship-test-djship63-" + name
		os.RemoveAll(root)
		s := fmt.Sprintf(`  %[1]s:
    connection: local
    url: %[1]s.djship63.test
    root: %[2]s
    app_server: %[3]s
    web: {http_port: %[4]d, https_port: %[5]d}
    django: {environment: {DJANGO_ALLOWED_HOSTS: %[1]s.djship63.test}}
`, name, root, app, 18100+port, 18500+port)
		if instance != "" {
			s += "    instance: " + instance + "\n"
		}
		return s
	}
	common := `project: djship63
source: {path: src}
` + exampleDjango + `webserver: nginx
tls: {certificate: self-signed}
secrets: {keys: [SECRET_KEY, GREETING]}
database: {engine: sqlite}
environments:
`
	site := writeSite(t, dir, "djship63", common+environment("production", "", "uwsgi", 63)+environment("staging", "djship63-staging", "gunicorn", 64))
	production, staging := onEnvironment(t, site, "production"), onEnvironment(t, site, "staging")
	t.Cleanup(func() { removeSite(production); removeSite(staging) })

	for _, env := range []string{"production", "staging"} {
		if out, err := shipTo(t, site, env, "v1"); err != nil {
			t.Fatalf("ship %s: %v\n%s", env, err, out)
		}
	}
	page(t, production, "v1")
	page(t, staging, "v1")
	for _, f := range []string{"/etc/nginx/sites-available/djship63.conf", "/etc/nginx/sites-available/djship63-staging.conf",
		"/etc/uwsgi/apps-available/djship63.a.ini", "/etc/init.d/gunicorn-djship63-staging", "/etc/nginx/ssl/djship63-staging.key"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%v", err)
		}
	}
	for _, user := range []string{"djship63", "djship63-staging"} {
		if exec.Command("id", "-u", user).Run() != nil {
			t.Errorf("no user %s: the environments share one", user)
		}
	}

	// Production under load while staging ships.
	var requests, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(loadInterval):
				}
				status, body, err := getPath(t, production, "/")
				requests.Add(1)
				if err != nil || status != 200 || !strings.Contains(body, `<code id="revision">v1</code>`) {
					failures.Add(1)
				}
			}
		}()
	}
	out, err := shipTo(t, site, "staging", "v2")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("ship staging v2: %v\n%s", err, out)
	}
	if failures.Load() != 0 || requests.Load() < 20 {
		t.Errorf("production answered %d of %d requests badly while staging shipped", failures.Load(), requests.Load())
	}
	page(t, staging, "v2")
	page(t, production, "v1")

	// Another site file of the same project, on another root.
	before, _ := os.ReadFile("/etc/nginx/sites-available/djship63.conf")
	other := filepath.Join(t.TempDir(), "other")
	copyTree(t, filepath.Join("..", "example"), filepath.Join(other, "src"))
	intruder := writeSite(t, other, "djship63", common+environment("other", "", "uwsgi", 65))
	t.Cleanup(func() { os.RemoveAll("/srv/djship-test-djship63-other") })
	var refused bytes.Buffer
	err = Provision(context.Background(), intruder, "other", Options{Out: &refused, Secrets: shipSecrets})
	if err == nil || !strings.Contains(err.Error(), "would take over what djship wrote for another site on this host, so nothing changed") ||
		!strings.Contains(err.Error(), "/etc/nginx/sites-available/djship63.conf (Managed by djship for djship63 in /srv/djship-test-djship63-production/djship63") ||
		!strings.Contains(err.Error(), "instance: djship63-other") {
		t.Fatalf("provision of a second djship63: %v\n%s", err, refused.String())
	}
	if after, _ := os.ReadFile("/etc/nginx/sites-available/djship63.conf"); !bytes.Equal(before, after) {
		t.Error("the refused provision changed production's nginx site")
	}
	if _, err := os.Stat("/srv/djship-test-djship63-other"); err == nil {
		t.Error("the refused provision made its folders")
	}
	page(t, production, "v1")
}
