package targets

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/release"
	"github.com/djship/djship/sites"
)

// shipCase is a site of the example Django project on one stack.
type shipCase struct {
	web, app, db, connection string
	keep                     int
	extra                    string // more YAML at the top level
	// machine is the fresh systemd host the case ships to over SSH,
	// instead of this machine.
	machine *testenv.Machine
}

// exampleSite writes a project with a copy of the example Django site and
// a site file for the case; the deployment root is removed at the end.
func exampleSite(t testing.TB, c shipCase, n int, sshd *testenv.SSHD) (*sites.Site, string) {
	t.Helper()
	project := fmt.Sprintf("djship%d", n)
	root := filepath.Join("/srv", "djship-test-"+project)
	os.RemoveAll(root)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	copyTree(t, filepath.Join("..", "example"), src)
	hosts, ssh, database := stackYAML(c, project, sshd)
	keep := c.keep
	if keep == 0 {
		keep = 3
	}
	yaml := fmt.Sprintf(`project: %s
url: %s.test
root: %s
keep_releases: %d
source: {path: src}
%s  environment: {DJANGO_ALLOWED_HOSTS: %s.test}
webserver: %s
web: {http_port: %d, https_port: %d}
app_server: %s
tls: {certificate: self-signed}
secrets: {keys: [SECRET_KEY, GREETING]}
%s
%s%senvironments:
  test:
%s
`, project, project, root, keep, exampleDjango, project, c.web, 18100+n, 18500+n, c.app, database, ssh, c.extra, hosts)
	site := writeSite(t, dir, project, yaml)
	t.Cleanup(func() { removeCaseSite(site, c) })
	return site, src
}

// exampleDjango is the django block of a site file for the example
// project, to which a test adds its own environment line.
const exampleDjango = `django:
  source_folder: .
  settings_folder: exampleproject
  settings_module: exampleproject.settings
  system_site_packages: true
`

// removeCaseSite removes what a case's ship left on this machine: the
// site, and its PostgreSQL database and role when it had them.
func removeCaseSite(site *sites.Site, c shipCase) {
	removeSite(site)
	if c.db != "postgres" {
		return
	}
	for _, sql := range []string{`DROP DATABASE IF EXISTS "%s"`, `DROP ROLE IF EXISTS "%s"`} {
		exec.Command("runuser", "-u", "postgres", "--", "psql", "-qc", fmt.Sprintf(sql, site.Settings.Project)).Run()
	}
}

// eachHost applies edit to the settings of every host of env, which the
// hosts read instead of the environment's own once the site is loaded.
func eachHost(env *sites.Environment, edit func(*sites.Settings)) {
	edit(&env.Settings)
	for i := range env.Hosts {
		edit(&env.Hosts[i].Settings)
	}
}

// stackYAML is the part of a test site file that a case decides: the
// test environment's hosts, the ssh settings, the database.
func stackYAML(c shipCase, project string, sshd *testenv.SSHD) (hosts, ssh, database string) {
	hosts, database = "    connection: local", "database: {engine: sqlite}"
	switch {
	case c.machine != nil:
		hosts = fmt.Sprintf("    hosts: [%s@%s]", testenv.SudoUser, c.machine.SSHAddr())
		ssh = fmt.Sprintf("ssh: {identity: %s, known_hosts: %s}\n", testenv.TestKeys().Sudo, c.machine.KnownHosts)
	case c.connection == "ssh":
		hosts = fmt.Sprintf("    hosts: [%s@127.0.0.1:%d]", testenv.SudoUser, sshd.Port)
		ssh = fmt.Sprintf("ssh: {identity: %s, known_hosts: %s}\n", testenv.TestKeys().Sudo, sshd.KnownHosts)
	}
	if c.db == "postgres" {
		database = fmt.Sprintf("database: {engine: postgres, name: %s, user: %s}", project, project)
	}
	return hosts, ssh, database
}

var shipSecrets = map[string]string{
	"SECRET_KEY":        "ship-test-secret-key-0123456789abcdef",
	"GREETING":          "Hello from the ship test",
	"DATABASE_PASSWORD": "pg 'pass\" word",
}

// shipRevision packages the source as the given revision and ships it.
func shipRevision(t *testing.T, site *sites.Site, revision string) (*release.Artifact, []*Deploy, string, error) {
	t.Helper()
	ctx := context.Background()
	a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts := Options{Out: &out, Secrets: shipSecrets, Connections: &Connections{}}
	defer opts.Connections.Close()
	if err := Provision(ctx, site, "test", opts); err != nil {
		t.Fatalf("provision: %v\n%s", err, out.String())
	}
	deploys, err := Upgrade(ctx, site, "test", a.Path, opts)
	t.Logf("upgrade to %s:\n%s", revision, out.String())
	return a, deploys, out.String(), err
}

// liveExample is the example site on nginx and uWSGI with sqlite, over
// the local connection, with revision v1 live.
func liveExample(t *testing.T, n int) (*sites.Site, string) {
	t.Helper()
	needExample(t)
	exec.Command("service", "apache2", "stop").Run() // nginx needs port 80
	site, src := exampleSite(t, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"}, n, nil)
	if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
		t.Fatal(err)
	}
	page(t, site, "v1")
	return site, src
}

// page fetches the site's page and checks the revision it shows.
func page(t *testing.T, site *sites.Site, revision string) string {
	t.Helper()
	status, body, _ := get(t, site, "https")
	if status != 200 || !strings.Contains(body, `<code id="revision">`+revision+`</code>`) {
		t.Fatalf("the site answers %d without revision %s:\n%s", status, revision, body)
	}
	return body
}

// sh runs a shell command on this machine as root.
func sh(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

func releasesOnHost(t *testing.T, site *sites.Site) map[string]string {
	t.Helper()
	p := NewPaths(site.Settings)
	out := sh(t, `cd "$1" && for r in */; do r=${r%/}; printf '%s %s\n' "$r" "$(cat "$r/.djship-state" 2>/dev/null)"; done`, p.Releases)
	states := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if name, state, ok := strings.Cut(l, " "); ok {
			states[name] = state
		}
	}
	return states
}

func TestShip(t *testing.T) {
	needExample(t)
	sshd := testenv.StartSSHD(t)
	cases := []shipCase{
		{web: "nginx", app: "uwsgi", db: "sqlite", connection: "ssh", keep: 2},
		{web: "apache2", app: "gunicorn", db: "postgres", connection: "local"},
	}
	for n, c := range cases {
		t.Run(fmt.Sprintf("%s+%s+%s/%s", c.web, c.app, c.db, c.connection), func(t *testing.T) {
			if c.db == "postgres" {
				testenv.Command(t, "pg_dump", "postgresql-client")
				testenv.Command(t, "pg_ctlcluster", "postgresql")
			}
			other := map[string]string{"nginx": "apache2", "apache2": "nginx"}[c.web]
			exec.Command("service", other, "stop").Run()
			site, src := exampleSite(t, c, n, sshd)
			p := NewPaths(site.Settings)

			if _, _, _, err := shipRevision(t, site, "v1"); err != nil {
				t.Fatal(err)
			}
			page(t, site, "v1")

			// Between deploys: an upload and a row.
			sh(t, `printf 'uploaded' > "$1/upload.txt" && chown "$2" "$1/upload.txt"`, p.Media, site.Settings.App.User)
			insert := `INSERT INTO notes_note (text, created) VALUES ('written between deploys', CURRENT_TIMESTAMP)`
			if c.db == "sqlite" {
				sh(t, `sqlite3 "$1" "$2"`, filepath.Join(p.DB, "db.sqlite3"), insert)
			} else {
				sh(t, `runuser -u postgres -- psql -qd "$1" -c "$2"`, site.Settings.Project, insert)
			}

			// A second revision: served, data kept, the previous release kept.
			os.WriteFile(filepath.Join(src, "notes", "templates", "notes", "index.html"),
				bytes.Replace(must(os.ReadFile(filepath.Join(src, "notes", "templates", "notes", "index.html"))), []byte("notes</p>"), []byte("notes (v2)</p>"), 1), 0o644)
			logins := 0
			if c.connection == "ssh" {
				logins = sshd.Accepted(t)
			}
			if _, _, _, err := shipRevision(t, site, "v2"); err != nil {
				t.Fatal(err)
			}
			if c.connection == "ssh" {
				if n := sshd.Accepted(t) - logins; n != 1 {
					t.Errorf("provision and upgrade logged in %d times, want one connection for the whole ship", n)
				}
			}
			if _, _, header := get(t, site, "https"); header.Get("Server") != map[string]string{"nginx": "nginx", "apache2": "Apache"}[c.web] || header.Get("X-Powered-By") != "" {
				t.Errorf("the Server header is %q (X-Powered-By %q): it names a version or the application server", header.Get("Server"), header.Get("X-Powered-By"))
			}
			body := page(t, site, "v2")
			if !strings.Contains(body, "(v2)") || !strings.Contains(body, "written between deploys") || !strings.Contains(body, `<span id="count">1</span>`) {
				t.Errorf("v2 page lacks the change or the row:\n%s", body)
			}
			status, media, _ := getPath(t, site, "/media/upload.txt")
			if status != 200 || media != "uploaded" {
				t.Errorf("the upload: %d %q", status, media)
			}
			snapshot := filepath.Join(p.Snapshots, "v2.sqlite3")
			if c.db == "postgres" {
				snapshot = filepath.Join(p.Snapshots, "v2.dump")
			}
			if _, err := os.Stat(snapshot); err != nil {
				t.Errorf("no snapshot before v2's migrations: %v", err)
			}
			if states := releasesOnHost(t, site); states["v1"] != "complete" || states["v2"] != "complete" {
				t.Errorf("releases = %v, want v1 kept and v2 complete", states)
			}
			if _, err := os.Stat(p.Lock); err == nil {
				t.Error("the lock is still held")
			}
			if c.keep != 2 {
				return
			}
			// Pruning keeps keep_releases: the live one and the previous.
			for _, rev := range []string{"v3", "v4"} {
				if _, _, _, err := shipRevision(t, site, rev); err != nil {
					t.Fatal(err)
				}
			}
			if states := releasesOnHost(t, site); len(states) != 2 || states["v4"] != "complete" || states["v3"] != "complete" {
				t.Errorf("after v3 and v4 with keep_releases 2: %v", states)
			}
			if _, err := os.Stat(filepath.Join(p.Snapshots, "v2.sqlite3")); err == nil {
				t.Error("the snapshot of a pruned release is still there")
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// getPath fetches one path of the site over https.
func getPath(t *testing.T, site *sites.Site, urlPath string) (int, string, error) {
	t.Helper()
	url := fmt.Sprintf("https://%s:%d%s", site.Settings.URL, site.Settings.Web.HTTPSPort, urlPath)
	out, err := exec.Command("curl", "-sk", "--resolve", fmt.Sprintf("%s:%d:%s", site.Settings.URL, site.Settings.Web.HTTPSPort, siteIP(site)), "-w", "\n%{http_code}", url).Output()
	if err != nil {
		return 0, "", err
	}
	i := strings.LastIndex(string(out), "\n")
	body, code := string(out[:i]), string(out[i+1:])
	var status int
	fmt.Sscan(code, &status)
	return status, body, nil
}

// TestShipFailures breaks one thing per case; each leaves v1 serving, the
// lock free, the half-built release marked failed, and an error that
// names the step and shows the tool's own message.
func TestShipFailures(t *testing.T) {
	site, src := liveExample(t, 7)
	p := NewPaths(site.Settings)

	type failure struct {
		name     string
		revision string
		breakIt  func()
		mendIt   func()
		step     string
		message  string
	}
	migration := filepath.Join(src, "notes", "migrations", "0002_broken.py")
	link := filepath.Join(src, "notes", "static", "notes", "broken.css")
	failures := []failure{
		{"failing migration", "bad-migration",
			func() {
				os.WriteFile(migration, []byte("from django.db import migrations\n\ndef fail(apps, schema_editor):\n    raise RuntimeError('this migration is broken')\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunPython(fail)]\n"), 0o644)
			},
			func() { os.Remove(migration) },
			"migrate", "RuntimeError: this migration is broken"},
		{"collectstatic failure", "bad-static",
			func() { os.Symlink("missing.css", link) },
			func() { os.Remove(link) },
			"collectstatic", "No such file or directory"},
		{"pip failure", "bad-pip",
			func() {
				site.Environments["test"].Hosts[0].Settings.Django.Dependencies = []string{"djship-no-such-package==1.0"}
				site.Environments["test"].Hosts[0].Settings.Django.Wheelhouse = "notes"
			},
			func() {
				site.Environments["test"].Hosts[0].Settings.Django.Dependencies = nil
				site.Environments["test"].Hosts[0].Settings.Django.Wheelhouse = ""
			},
			"virtualenv", "No matching distribution found for djship-no-such-package==1.0"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			f.breakIt()
			defer f.mendIt()
			_, _, out, err := shipRevision(t, site, f.revision)
			if err == nil {
				t.Fatal("the broken release shipped")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("step %q", f.step)) || !strings.Contains(err.Error()+out, f.message) {
				t.Errorf("the error does not name step %q and show %q:\n%v", f.step, f.message, err)
			}
			for _, secret := range shipSecrets {
				if strings.Contains(err.Error()+out, secret) {
					t.Errorf("a secret value reached the error or the output")
				}
			}
			page(t, site, "v1")
			if _, err := os.Stat(p.Lock); err == nil {
				t.Error("the lock is still held")
			}
			if state := releasesOnHost(t, site)[f.revision]; state != "failed" {
				t.Errorf("the broken release is %q, want failed", state)
			}
			if live := sh(t, `readlink "$1"`, p.Current); live != "releases/v1" {
				t.Errorf("current -> %s", live)
			}
		})
	}

	t.Run("tarball escaping the release", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), site.Settings.Project+"-rbad.tar.gz")
		writeTarball(t, bad, map[string]string{
			release.ManifestName: fmt.Sprintf(`{"project": %q, "revision": "bad-tar"}`, site.Settings.Project),
			"manage.py":          "",
			"../../escape":       "owned",
		})
		before := sh(t, `ls "$1" "$2"`, p.Releases, p.Versions)
		_, err := Upgrade(context.Background(), site, "test", bad, Options{Out: io.Discard, Secrets: shipSecrets})
		if err == nil || !strings.Contains(err.Error(), "../../escape: climbs out of the release") || !strings.Contains(err.Error(), "nothing on the hosts changed") {
			t.Errorf("got %v", err)
		}
		if after := sh(t, `ls "$1" "$2"`, p.Releases, p.Versions); after != before {
			t.Errorf("the host changed:\n%s\n->\n%s", before, after)
		}
		page(t, site, "v1")
	})

	t.Run("full disk", func(t *testing.T) {
		// A second site whose deployment root is a small tmpfs: v1 fits,
		// v2's virtualenv does not.
		testenv.Command(t, "mount", "mount")
		full, fullSrc := exampleSite(t, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "local"}, 8, nil)
		_ = fullSrc
		root := full.Settings.Root
		os.MkdirAll(root, 0o755)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=40m,mode=0755", "tmpfs", root).CombinedOutput(); err != nil {
			testenv.Missing(t, "tmpfs mounts", fmt.Sprintf("%v: %s", err, out))
		}
		t.Cleanup(func() {
			removeSite(full)
			exec.Command("umount", "-l", root).Run()
		})
		if _, _, _, err := shipRevision(t, full, "v1"); err != nil {
			t.Fatal(err)
		}
		page(t, full, "v1")
		fp := NewPaths(full.Settings)
		// Fill the disk but for a little: the next virtualenv cannot fit.
		// v2 needs a new one (an unchanged one would be hard links).
		sh(t, `dd if=/dev/zero of="$1/filler" bs=1M count=8 2>/dev/null; true`, fp.Shared)
		full.Environments["test"].Hosts[0].Settings.Django.SystemSitePackages = false
		_, _, out, err := shipRevision(t, full, "v2")
		if err == nil {
			t.Fatal("v2 shipped onto a full disk")
		}
		if !strings.Contains(strings.ToLower(err.Error()+out), "no space left on device") {
			t.Errorf("the error does not say the disk is full:\n%v", err)
		}
		page(t, full, "v1")
		if _, err := os.Stat(fp.Lock); err == nil {
			t.Error("the lock is still held")
		}
	})

	t.Run("archives to deflate", func(t *testing.T) {
		// A zip in the source is unpacked where the site says; a zip with an
		// entry that climbs out is refused before any host changes.
		zipFile := filepath.Join(src, "vendor.zip")
		writeZip(t, zipFile, map[string]string{"vendor/vendor.css": "body { color: teal }\n"})
		defer os.Remove(zipFile)
		h := &site.Environments["test"].Hosts[0].Settings
		h.Django.ArchivesToDeflate = []sites.Deflate{{Archive: "vendor.zip", Into: "notes/static"}}
		defer func() { h.Django.ArchivesToDeflate = nil }()
		if _, _, _, err := shipRevision(t, site, "deflate"); err != nil {
			t.Fatal(err)
		}
		if status, body, _ := getPath(t, site, "/static/vendor/vendor.css"); status != 200 || !strings.Contains(body, "teal") {
			t.Errorf("the unpacked file through collectstatic: %d %q", status, body)
		}
		writeZip(t, zipFile, map[string]string{"../../../escape.css": "owned"})
		before := sh(t, `ls "$1" "$2"`, p.Releases, p.Versions)
		_, _, _, err := shipRevision(t, site, "bad-deflate")
		if err == nil || !strings.Contains(err.Error(), "vendor.zip: ../../../escape.css: climbs out of the release") {
			t.Errorf("a zip escaping the release: %v", err)
		}
		if after := sh(t, `ls "$1" "$2"`, p.Releases, p.Versions); after != before {
			t.Errorf("the host changed:\n%s\n->\n%s", before, after)
		}
	})

	t.Run("wheelhouse", func(t *testing.T) {
		// Offline hosts install from wheels shipped in the tarball.
		wheels := filepath.Join(src, "wheelhouse")
		os.MkdirAll(wheels, 0o755)
		writeWheel(t, filepath.Join(wheels, "djship_probe-1.0-py3-none-any.whl"))
		defer os.RemoveAll(wheels)
		h := &site.Environments["test"].Hosts[0].Settings
		h.Django.Dependencies, h.Django.Wheelhouse = []string{"djship-probe==1.0"}, "wheelhouse"
		defer func() { h.Django.Dependencies, h.Django.Wheelhouse = nil, "" }()
		if _, _, _, err := shipRevision(t, site, "wheels"); err != nil {
			t.Fatal(err)
		}
		out := sh(t, `"$1/venv/bin/python" -c 'import djship_probe; print(djship_probe.VALUE)'`, p.Current)
		if out != "installed from the wheelhouse" {
			t.Errorf("probe says %q", out)
		}
		page(t, site, "wheels")
		// The successful ship removed the failed releases quarantined before.
		for name, state := range releasesOnHost(t, site) {
			if state != "complete" {
				t.Errorf("release %s (%s) outlived a successful ship", name, state)
			}
		}
	})
}

// writeTarball writes a .tar.gz with the given files, names as given.
func writeTarball(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeZip writes a zip with the given files.
func writeZip(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// writeWheel builds a tiny pure-Python wheel by hand: a wheel is a zip
// with the package and its .dist-info.
func writeWheel(t *testing.T, p string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	files := map[string]string{
		"djship_probe/__init__.py":                 "VALUE = 'installed from the wheelhouse'\n",
		"djship_probe-1.0.dist-info/METADATA":      "Metadata-Version: 2.1\nName: djship-probe\nVersion: 1.0\n",
		"djship_probe-1.0.dist-info/WHEEL":         "Wheel-Version: 1.0\nGenerator: djship-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"djship_probe-1.0.dist-info/top_level.txt": "djship_probe\n",
	}
	var record strings.Builder
	for name, body := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
		record.WriteString(name + ",,\n")
	}
	record.WriteString("djship_probe-1.0.dist-info/RECORD,,\n")
	w, _ := zw.Create("djship_probe-1.0.dist-info/RECORD")
	w.Write([]byte(record.String()))
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
}
