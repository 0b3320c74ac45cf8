package targets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djship/djship/sites"
)

// TestDemo runs the README's first command as a newcomer would, twice:
// the example site answers over https on this machine, and the second
// run ships a new release and says which. It ships a copy of the example
// site with its own project, root, ports and user, so that a demo shipped
// before on this machine changes nothing; and it passes after a demo that
// failed halfway, whatever it left behind.
func TestDemo(t *testing.T) {
	needExample(t)
	exec.Command("service", "apache2", "stop").Run()
	for i, c := range []struct {
		name string
		// failed breaks the copy's source for a first demo, which must
		// fail; the source is put back before the demos that must work.
		failed func(t *testing.T, repo string) (undo func())
		// failure is what the failed demo's error says.
		failure string
	}{
		{name: "on a fresh machine"},
		{
			name: "after a demo that failed at migrate",
			failed: func(t *testing.T, repo string) func() {
				p := filepath.Join(repo, "example", "notes", "migrations", "0002_broken.py")
				write(t, p, `from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("a migration that fails")


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [migrations.RunPython(fail)]
`)
				return func() { os.Remove(p) }
			},
			failure: "a migration that fails",
		},
		{
			name: "after a first release that never answered",
			failed: func(t *testing.T, repo string) func() {
				p := filepath.Join(repo, "example", "exampleproject", "wsgi.py")
				good, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				write(t, p, string(good)+"\nraise RuntimeError(\"a release that cannot start\")\n")
				return func() { write(t, p, string(good)) }
			},
			failure: "a release that cannot start",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			site, repo := demoCopy(t, fmt.Sprintf("djship-test-demo%d", i), 18190+i, 18553+i)
			if c.failed != nil {
				undo := c.failed(t, repo)
				var out bytes.Buffer
				err := demo(context.Background(), site, &out)
				if err == nil || !strings.Contains(err.Error(), c.failure) {
					t.Fatalf("the broken demo: error %v, want one that says %q\n%s", err, c.failure, out.String())
				}
				undo()
			}
			checkDemo(t, site, fmt.Sprintf("https://localhost:%d/", 18553+i))
		})
	}
}

// checkDemo ships the demo twice and checks that the page answers at url
// and that the second run says it shipped a new release.
func checkDemo(t *testing.T, site *sites.Site, url string) {
	t.Helper()
	var out bytes.Buffer
	if err := demo(context.Background(), site, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	first := out.String()
	if !strings.Contains(first, "open "+url) {
		t.Fatalf("the demo does not say it answers at %s:\n%s", url, first)
	}
	body, err := exec.Command("curl", "-sk", url).Output()
	if err != nil || !strings.Contains(string(body), "Hello from the djship demo") || !strings.Contains(string(body), `<code id="revision">`) {
		t.Fatalf("the demo page: %v\n%s", err, body)
	}
	out.Reset()
	if err := demo(context.Background(), site, &out); err != nil {
		t.Fatalf("second demo: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "this new release carries the time in its name") || !strings.Contains(out.String(), "is kept for rollback") {
		t.Errorf("the second demo does not say it shipped a new release:\n%s", out.String())
	}
}

// demoCopy writes a repository of its own for the test, with a copy of
// example/ and of sites/example.yaml whose demo environment ships the
// project (djship-test-…) in /srv/<project>, as its own user, on its own
// ports; it removes that site before and after the test, and makes the
// repository the working folder, where the demo writes dist/.
func demoCopy(t *testing.T, project string, httpPort, httpsPort int) (*sites.Site, string) {
	t.Helper()
	repo := t.TempDir()
	copyTree(t, filepath.Join("..", "example"), filepath.Join(repo, "example"))
	data, err := os.ReadFile(filepath.Join("..", DemoSite))
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(data)
	for _, r := range [][2]string{
		{"\nproject: example\n", "\nproject: " + project + "\n"},
		{"\n  user: example\n  group: example\n", "\n  user: " + project + "\n  group: " + project + "\n"},
		{"\n    root: /srv/djship-demo\n", "\n    root: /srv/" + project + "\n"},
		{"\n      http_port: 8080\n", fmt.Sprintf("\n      http_port: %d\n", httpPort)},
		{"\n      https_port: 8443\n", fmt.Sprintf("\n      https_port: %d\n", httpsPort)},
	} {
		if n := strings.Count(yaml, r[0]); n != 1 {
			t.Fatalf("%s holds %q %d times, want once: change the test's copy along with it", DemoSite, strings.TrimSpace(r[0]), n)
		}
		yaml = strings.Replace(yaml, r[0], r[1], 1)
	}
	write(t, filepath.Join(repo, DemoSite), yaml)
	t.Chdir(repo)
	site, err := sites.Load(DemoSite)
	if err != nil {
		t.Fatal(err)
	}
	// removeSite removes what the site's settings name: the demo
	// environment's, not the shared ones (root /srv/www).
	shipped := *site
	shipped.Settings = site.Environments[DemoEnv].Settings
	if root := shipped.Settings.Root; root != "/srv/"+project || !strings.HasPrefix(project, "djship-test-") {
		t.Fatalf("the copy's demo environment has root %s, want /srv/djship-test-…", root)
	}
	removeSite(&shipped)
	t.Cleanup(func() { removeSite(&shipped) })
	return site, repo
}
