package targets

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/release"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
)

// containerSite is the example site in mode: container, behind nginx,
// shipped over SSH to this machine, its images in the registry the
// tests share (each site its own repository), which takes only its
// login.
func containerSite(t *testing.T, n int, sshd *testenv.SSHD, db string, more ...string) (*sites.Site, string, map[string]string) {
	t.Helper()
	needExample(t)
	exec.Command("service", "apache2", "stop").Run() // nginx needs port 80
	return containerSiteFor(t, n, shipCase{web: "nginx", app: "gunicorn", db: db, connection: "ssh"}, sshd, testenv.SharedRegistry(t), more...)
}

// containerSiteFor is the example site of case c in mode: container,
// its images in the registry reg.
func containerSiteFor(t *testing.T, n int, c shipCase, sshd *testenv.SSHD, reg *testenv.Registry, more ...string) (*sites.Site, string, map[string]string) {
	t.Helper()
	base := testenv.BaseImage(t)
	c.extra = fmt.Sprintf("mode: container\nimage: djship-test/site%d\nbase_image: %s\nregistry: {url: %s, username: %s}\n", n, base, reg.URL, reg.User) + strings.Join(more, "")
	c.keep = 2
	site, src := exampleSite(t, c, n, sshd)
	secrets := maps.Clone(shipSecrets)
	secrets["REGISTRY_PASSWORD"] = reg.Password
	t.Cleanup(func() {
		exec.Command("sh", "-c", fmt.Sprintf("docker ps -aq --filter label=io.djship.project=%s | xargs -r docker rm -f", site.Settings.Project)).Run()
		exec.Command("sh", "-c", fmt.Sprintf("docker images -q %s/djship-test/site%d | xargs -r docker rmi -f", reg.Host, n)).Run()
	})
	return site, src, secrets
}

// shipContainer releases the source as revision, builds and pushes its
// image, provisions and upgrades.
func shipContainer(t *testing.T, site *sites.Site, secrets map[string]string, revision string) (string, error) {
	t.Helper()
	ctx := context.Background()
	a, err := buildRelease(t, site, map[string]string{"REVISION": revision})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := release.BuildImage(ctx, site, "test", a.Path, release.ImageOptions{Secrets: secrets, Out: &out}); err != nil {
		return out.String(), fmt.Errorf("image: %w", err)
	}
	opts := Options{Out: &out, Secrets: secrets, Connections: &Connections{}}
	defer opts.Connections.Close()
	if err := Provision(ctx, site, "test", opts); err != nil {
		t.Fatalf("provision: %v\n%s", err, out.String())
	}
	_, err = Upgrade(ctx, site, "test", a.Path, opts)
	t.Logf("ship %s:\n%s", revision, out.String())
	return out.String(), err
}

// venvLayer is the layer of image that built the virtualenv.
func venvLayer(t *testing.T, image string) string {
	t.Helper()
	for _, l := range strings.Split(sh(t, "docker history --no-trunc --format '{{.ID}} {{.CreatedBy}}' "+image), "\n") {
		if id, createdBy, _ := strings.Cut(l, " "); strings.Contains(createdBy, "venv.sh") {
			return id
		}
	}
	t.Fatalf("no layer of %s builds the virtualenv", image)
	return ""
}

// TestContainerMode ships the example site as images with Docker Compose:
// a first ship, a code-only ship under load, a release whose image cannot
// serve (its health check fails: the old containers keep serving), a
// rollback under load; and checks that the secrets are in no container's
// configuration (docker inspect), no argv and no log.
func TestContainerMode(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	site, src, secrets := containerSite(t, 100, sshd, "sqlite")
	if out, err := shipContainer(t, site, secrets, "v1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	page(t, site, "v1")

	l := startLoad(site, 4)
	time.Sleep(time.Second)
	if out, err := shipContainer(t, site, secrets, "v2"); err != nil {
		l.finish()
		t.Fatalf("%v\n%s", err, out)
	}
	page(t, site, "v2")
	time.Sleep(3 * time.Second) // the old containers drain and stop
	total, failed, bad, first := l.finish()
	// v2 changed the source only: its image reuses v1's virtualenv.
	image := site.Environments["test"].Settings.ImageName()
	if v1, v2 := venvLayer(t, image+":v1"), venvLayer(t, image+":v2"); v1 != v2 {
		t.Errorf("the image of v2, which changed no dependency, built its virtualenv again: layer %s, v1's %s", v2, v1)
	}
	t.Logf("code-only ship under load: %d requests, %d failed, %d non-2xx", total, failed, bad)
	if total < 50 || failed != 0 || bad != 0 {
		t.Errorf("code-only ship: %d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
	}

	// A release whose every page is a server error.
	views := filepath.Join(src, "notes", "views.py")
	good, err := os.ReadFile(views)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(views, append(good, []byte("\n\ndef index(request):\n    raise RuntimeError('broken on purpose')\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	l = startLoad(site, 4)
	out, err := shipContainer(t, site, secrets, "v3")
	total, failed, bad, first = l.finish()
	if err == nil {
		t.Fatalf("a release that answers 500 shipped:\n%s", out)
	}
	if !strings.Contains(err.Error(), "live release keeps serving") {
		t.Errorf("the error does not say the live release keeps serving: %v", err)
	}
	t.Logf("broken image: %v; %d requests meanwhile, %d failed, %d non-2xx", err, total, failed, bad)
	if failed != 0 || bad != 0 {
		t.Errorf("broken image: %d failed, %d non-2xx; first: %v", failed, bad, first)
	}
	page(t, site, "v2")
	os.WriteFile(views, good, 0o644)

	// Rollback under load starts v1's image beside v2's.
	l = startLoad(site, 4)
	time.Sleep(time.Second)
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: io.Discard, Secrets: secrets}}); err != nil {
		l.finish()
		t.Fatal(err)
	}
	page(t, site, "v1")
	time.Sleep(3 * time.Second)
	total, failed, bad, first = l.finish()
	t.Logf("rollback under load: %d requests, %d failed, %d non-2xx", total, failed, bad)
	if total < 20 || failed != 0 || bad != 0 {
		t.Errorf("rollback: %d requests, %d failed, %d non-2xx; first: %v", total, failed, bad, first)
	}

	// Status names the image of the live release.
	var status bytes.Buffer
	if _, err := Status(context.Background(), site, "test", Options{Out: &status, Secrets: secrets}); err != nil {
		t.Fatalf("status: %v\n%s", err, status.String())
	}
	if !strings.Contains(status.String(), "sha256:") {
		t.Errorf("status shows no image digest:\n%s", status.String())
	}

	// No secret in what Docker keeps of the containers, nor in their logs.
	ids := strings.Fields(sh(t, "docker ps -aq --filter label=io.djship.project="+site.Settings.Project))
	if len(ids) == 0 {
		t.Fatal("no container of the site runs")
	}
	inspect := sh(t, "docker inspect "+strings.Join(ids, " "))
	logs := sh(t, "for id in "+strings.Join(ids, " ")+"; do docker logs $id 2>&1; done")
	for _, name := range []string{"SECRET_KEY", "GREETING", "REGISTRY_PASSWORD"} {
		v := secrets[name]
		for what, text := range map[string]string{"docker inspect": inspect, "docker logs": logs} {
			if strings.Contains(text, v) {
				t.Errorf("the secret %s is in %s", name, what)
			}
		}
	}
	if strings.Contains(inspect, "DJSHIP_ENVIRONMENT") == false {
		t.Errorf("the containers do not name the environment file:\n%s", inspect)
	}

	// keep_releases is 2: the next ship keeps itself and v1, the release
	// live before it, and prunes v2's folder and image.
	releases := NewPaths(site.Environments["test"].Settings).Releases
	v2image := strings.TrimSpace(sh(t, "cat "+filepath.Join(releases, "v2", "image")))
	if out, err := shipContainer(t, site, secrets, "v4"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	page(t, site, "v4")
	if exec.Command("docker", "image", "inspect", v2image).Run() == nil {
		t.Errorf("the image of the pruned release v2 (%s) is still on the host", v2image)
	}
	if _, err := os.Stat(filepath.Join(releases, "v1", "image")); err != nil {
		t.Errorf("v1, the release to roll back to, lost its image record: %v", err)
	}
	var log bytes.Buffer
	if err := Releases(context.Background(), site, "test", Options{Out: &log, Secrets: secrets}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "IMAGE") || !strings.Contains(log.String(), "@sha256:") {
		t.Errorf("releases shows no image:\n%s", log.String())
	}
}

// TestContainerModeWithPostgreSQL ships the example in containers that
// use the host's PostgreSQL (through its socket), with a zip of static
// files unpacked into the image (django.archives_to_deflate), then runs manage.py in
// a one-off container of the live image and reads the containers' logs
// through mage logs.
func TestContainerModeWithPostgreSQL(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	// A service of the site's own, which no release switch touches.
	service := fmt.Sprintf("compose:\n  services:\n    files: {image: %s, command: [python3, -m, http.server, '18901', --bind, 127.0.0.1, --directory, /data], environment: {PYTHONUNBUFFERED: '1'}, volumes: ['data:/data']}\n", testenv.BaseImage(t))
	site, src, secrets := containerSite(t, 101, sshd, "postgres", service)
	// A zip in the source, unpacked into the image (archives_to_deflate)
	// before collectstatic.
	writeZip(t, filepath.Join(src, "vendor.zip"), map[string]string{"vendor/vendor.css": "body { color: teal }\n"})
	deflate := []sites.Deflate{{Archive: "vendor.zip", Into: "notes/static"}}
	env := site.Environments["test"]
	eachHost(env, func(s *sites.Settings) { s.Django.ArchivesToDeflate = deflate })
	t.Cleanup(func() {
		// The containers first: a volume in use stays.
		exec.Command("sh", "-c", "docker ps -aq --filter label=io.djship.project=djship101 | xargs -r docker rm -f").Run()
		exec.Command("docker", "volume", "rm", "-f", "djship101-services_data").Run()
	})
	var serviceID string
	for _, rev := range []string{"v1", "v2"} {
		if out, err := shipContainer(t, site, secrets, rev); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		page(t, site, rev)
		id := strings.TrimSpace(sh(t, "docker ps -q --filter label=io.djship.project=djship101 --filter label=io.djship.service=files"))
		if id == "" || (serviceID != "" && id != serviceID) {
			t.Errorf("after %s the service of compose.services is %q, before %q: it must run, untouched by the release", rev, id, serviceID)
		}
		serviceID = id
	}
	if status, body, _ := getPath(t, site, "/static/vendor/vendor.css"); status != 200 || !strings.Contains(body, "teal") {
		t.Errorf("the file of django.archives_to_deflate through collectstatic in the image: %d %q", status, body)
	}
	if got := sh(t, "curl -fsS -o /dev/null -w '%{http_code}' http://127.0.0.1:18901/"); got != "200" {
		t.Errorf("the service of compose.services answers %s", got)
	}
	// The notes app's table is in PostgreSQL, not in a sqlite file.
	tables := sh(t, "runuser -u postgres -- psql -d djship101 -Atc \"select count(*) from pg_tables where tablename = 'notes_note'\"")
	if strings.TrimSpace(tables) != "1" {
		t.Errorf("the notes table is not in PostgreSQL: %q", tables)
	}
	var out bytes.Buffer
	err := Manage(context.Background(), site, "test", []string{"showmigrations", "notes"}, ManageOptions{
		Options: Options{Out: &out, Secrets: secrets}, Terminal: remote.Terminal{In: strings.NewReader(""), Out: &out, Err: &out}})
	if err != nil {
		t.Fatalf("manage: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "[X] 0001_initial") {
		t.Errorf("showmigrations in the live image:\n%s", out.String())
	}
	out.Reset()
	if err := Logs(context.Background(), site, "test", LogsOptions{Options: Options{Out: &out, Secrets: secrets}, Lines: 20}); err != nil {
		t.Fatalf("logs: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "djship101-b") || !strings.Contains(out.String(), "Listening at: unix:") {
		t.Errorf("mage logs shows no log of the live containers:\n%s", out.String())
	}
}

// TestContainerModeWithADatabaseContainer runs the site's PostgreSQL as a
// compose service of its own (compose.database), its data in a named
// volume: two ships (each snapshotted with pg_dump over TCP), the second
// with a new migration; a third whose image fails Django's deployment
// checks (django.check_deploy) and so never switches; a rollback that
// finds the migration v1 does not know (showmigrations in both images)
// and restores the database; the password in no configuration Docker
// keeps; and a new password in the secrets, given to the role by the
// next ship.
func TestContainerModeWithADatabaseContainer(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	pg := testenv.PostgresImage(t)
	site, src, secrets := containerSite(t, 102, sshd, "postgres", "compose: {database: "+pg+"}\n")
	port := 15500 + 102
	env := site.Environments["test"]
	eachHost(env, func(s *sites.Settings) { s.Database.Port = port })
	t.Cleanup(func() {
		exec.Command("sh", "-c", "docker ps -aq --filter label=io.djship.project=djship102 | xargs -r docker rm -f").Run()
		exec.Command("docker", "volume", "rm", "-f", "djship102-db_pgdata").Run()
		exec.Command("docker", "network", "rm", "djship102-db_default").Run()
	})
	for _, rev := range []string{"v1", "v2"} {
		if rev == "v2" {
			migration := "from django.db import migrations\n\nclass Migration(migrations.Migration):\n    dependencies = [('notes', '0001_initial')]\n    operations = [migrations.RunSQL('CREATE TABLE notes_extra (id integer)', 'DROP TABLE notes_extra')]\n"
			if err := os.WriteFile(filepath.Join(src, "notes", "migrations", "0002_table.py"), []byte(migration), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := shipContainer(t, site, secrets, rev); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		page(t, site, rev)
	}
	db := strings.TrimSpace(sh(t, "docker ps -q --filter label=io.djship.project=djship102 --filter label=io.djship.service=database"))
	extraTable := func() string {
		return strings.TrimSpace(sh(t, "docker exec "+db+" psql -p 5432 -U djship102 -d djship102 -Atc \"select count(*) from pg_tables where tablename = 'notes_extra'\""))
	}
	if db == "" {
		t.Fatal("no database container runs")
	}
	if got := strings.TrimSpace(sh(t, "docker exec "+db+" psql -p 5432 -U djship102 -d djship102 -Atc \"select count(*) from pg_tables where tablename = 'notes_note'\"")); got != "1" {
		t.Errorf("the notes table is not in the database container: %q", got)
	}
	if volumes := sh(t, "docker inspect -f '{{range .Mounts}}{{.Name}} {{end}}' "+db); !strings.Contains(volumes, "djship102-db_pgdata") {
		t.Errorf("the data is not in the named volume: %s", volumes)
	}
	snapshots := NewPaths(env.Settings).Snapshots
	if _, err := os.Stat(filepath.Join(snapshots, "v2.dump")); err != nil {
		entries, _ := os.ReadDir(snapshots)
		t.Errorf("no snapshot of the database before v2 migrated (%v): %v", err, entries)
	}
	if got := extraTable(); got != "1" {
		t.Errorf("v2's migration did not run in the database container: %q tables notes_extra", got)
	}

	// Django's deployment checks warn about this project (no HSTS, for
	// one): with django.check_deploy the image never serves.
	eachHost(env, func(s *sites.Settings) { s.Django.CheckDeploy = true })
	out, err := shipContainer(t, site, secrets, "v3")
	if err == nil || !strings.Contains(err.Error(), `step "deploy checks"`) || !strings.Contains(out, "security.W004") {
		t.Fatalf("an image that fails the deployment checks: %v\n%s", err, out)
	}
	page(t, site, "v2")
	eachHost(env, func(s *sites.Settings) { s.Django.CheckDeploy = false })

	var rollback bytes.Buffer
	if _, err := Rollback(context.Background(), site, "test", RollbackOptions{Options: Options{Out: &rollback, Secrets: secrets}, RestoreDB: true}); err != nil {
		t.Fatalf("%v\n%s", err, rollback.String())
	}
	page(t, site, "v1")
	if !strings.Contains(rollback.String(), "the database has migrations v1 does not know: notes.0002_table; the database snapshot will be restored") {
		t.Errorf("the rollback does not name the migration v1 does not know:\n%s", rollback.String())
	}
	if got := extraTable(); got != "0" {
		t.Errorf("after the rollback restored the database, %q tables notes_extra are left", got)
	}
	if inspect := sh(t, "docker inspect "+db); strings.Contains(inspect, secrets["DATABASE_PASSWORD"]) {
		t.Error("the database password is in docker inspect of the database container")
	}

	// A new password in the secrets: the next ship gives it to the role
	// in the running server (its data volume keeps the old one), and the
	// old one logs in no more.
	old := secrets["DATABASE_PASSWORD"]
	secrets["DATABASE_PASSWORD"] = "rotated-" + old
	out, err = shipContainer(t, site, secrets, "v4")
	if err != nil {
		t.Fatalf("a ship with a new database password: %v\n%s", err, out)
	}
	page(t, site, "v4")
	if !strings.Contains(out, "role djship102 has the password of the secrets again") {
		t.Errorf("the ship does not say it gave the role the new password:\n%s", out)
	}
	login := func(password string) error {
		cmd := exec.Command("psql", "-X", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "djship102", "-d", "djship102", "-Atc", "select 1")
		cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5")
		return cmd.Run()
	}
	if err := login(secrets["DATABASE_PASSWORD"]); err != nil {
		t.Errorf("the new password does not log in: %v", err)
	}
	if login(old) == nil {
		t.Error("the old password still logs in")
	}
}

// TestDockerStartScript runs docker-start.sh, what provision runs on a
// host without systemd whose Docker daemon is stopped, in namespaces of
// its own (mount, network, PID) with empty /run, /var/lib/docker and
// /var/log, so that the daemon it starts is a second one beside this
// machine's. Where Debian's init script cannot raise its limits (no
// CAP_SYS_RESOURCE, as on this machine), the script starts dockerd
// itself; either way the daemon must answer, and it is gone with the
// namespaces.
func TestDockerStartScript(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Command(t, "dockerd", "docker.io")
	testenv.Command(t, "unshare", "util-linux")
	dir := t.TempDir()
	start := filepath.Join(dir, "docker-start.sh")
	if err := os.WriteFile(start, []byte(script("docker-start.sh")), 0o755); err != nil {
		t.Fatal(err)
	}
	inside := `set -e
mount --make-rprivate /
for d in /run /var/lib/docker /var/log; do mkdir -p "$d"; mount -t tmpfs tmpfs "$d"; done
ip link set lo up
sh "$1" sysv
docker info --format '{{.ServerVersion}} {{.DockerRootDir}}'
test -S /var/run/docker.sock
`
	cmd := exec.Command("unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c", inside, "inside", start)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=")
	out, err := cmd.CombinedOutput()
	t.Logf("docker-start.sh in namespaces of its own:\n%s", out)
	if err != nil {
		t.Fatalf("the daemon docker-start.sh started does not answer: %v", err)
	}
	if !strings.Contains(string(out), " /var/lib/docker") {
		t.Errorf("docker info does not show the daemon's root folder: %s", out)
	}
	const capSysResource = 24
	if !hasCapability(t, capSysResource) && !strings.Contains(string(out), "started dockerd directly") {
		t.Errorf("without CAP_SYS_RESOURCE the init script cannot start Docker, yet the script did not say it started dockerd itself:\n%s", out)
	}
}

// hasCapability reports whether this process has capability bit n in its
// effective set.
func hasCapability(t *testing.T, n uint) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			var caps uint64
			if _, err := fmt.Sscanf(hex, "%x", &caps); err != nil {
				t.Fatal(err)
			}
			return caps&(1<<n) != 0
		}
	}
	t.Fatal("no CapEff line in /proc/self/status")
	return false
}

// TestContainerModeOnAFreshSystemdHost ships the example in containers to
// a fresh Debian machine with systemd as PID 1 and no Docker: provision
// installs Debian's docker.io and docker-compose, the image comes from
// the registry, and a code-only ship under load fails no request. Then
// the daemon is stopped and disabled, as an operator might leave it: the
// next ship starts and enables it through systemd (docker-start.sh), and
// after a reboot the host serves the live release again by itself.
func TestContainerModeOnAFreshSystemdHost(t *testing.T) {
	t.Parallel() // on machines of its own: beside the other machine tests
	needMachineExample(t)
	reg := testenv.StartRegistry(t)
	m := testenv.NewBridge(t).BootForDocker(t)
	t.Logf("%s booted in %s", m.Name, m.BootTime.Round(time.Millisecond))
	m.Forward(t, reg.Port())
	site, src, secrets := containerSiteFor(t, 103, shipCase{web: "nginx", app: "gunicorn", db: "sqlite", machine: m}, nil, reg)
	if got := m.Shell(t, "command -v docker || echo none"); got != "none" {
		t.Fatalf("the fresh machine has Docker already: %s", got)
	}
	out, err := shipContainer(t, site, secrets, "v1")
	if err != nil {
		t.Fatalf("the first ship to a fresh host: %v\n%s", err, out)
	}
	page(t, site, "v1")
	if got := m.Shell(t, "dpkg-query -W -f='${db:Status-Status} ' docker.io docker-compose"); got != "installed installed" {
		t.Errorf("docker.io and docker-compose on the host: %q", got)
	}

	l := startLoad(site, 4)
	time.Sleep(time.Second)
	index := filepath.Join(src, "notes", "templates", "notes", "index.html")
	good := must(os.ReadFile(index))
	os.WriteFile(index, bytes.Replace(good, []byte("notes</p>"), []byte("notes (v2)</p>"), 1), 0o644)
	if out, err := shipContainer(t, site, secrets, "v2"); err != nil {
		l.finish()
		t.Fatalf("the code-only ship under load: %v\n%s", err, out)
	}
	if body := page(t, site, "v2"); !strings.Contains(body, "(v2)") {
		t.Errorf("v2 is live without its change:\n%s", body)
	}
	time.Sleep(3 * time.Second) // the old containers drain and stop
	total, failed, bad, first := l.finish()
	t.Logf("code-only ship under load on a systemd host: %d requests, %d failed, %d non-2xx", total, failed, bad)
	if total < 50 || failed != 0 || bad != 0 {
		t.Errorf("code-only ship: %d requests, %d failed, %d non-2xx; first problem: %v", total, failed, bad, first)
	}

	// The daemon stopped and off at boot: the next ship starts it and
	// enables it, and the containers come back with it.
	m.Shell(t, "systemctl disable --now docker.socket docker.service >/dev/null 2>&1")
	if m.Shell(t, "systemctl is-active docker.service || true") == "active" {
		t.Fatal("the Docker daemon still runs")
	}
	out, err = shipContainer(t, site, secrets, "v3")
	if err != nil {
		t.Fatalf("a ship to a host whose Docker daemon is stopped: %v\n%s", err, out)
	}
	page(t, site, "v3")
	if got := m.Shell(t, "systemctl is-enabled docker.service; systemctl is-active docker.service"); got != "enabled\nactive" {
		t.Errorf("after the ship the Docker service is %q, want enabled and active", got)
	}
	m.Reboot(t)
	t.Logf("%s rebooted in %s", m.Name, m.BootTime.Round(time.Millisecond))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if status, _, _ := getPath(t, site, "/"); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after the reboot the site does not answer; containers:\n%s", m.Shell(t, "docker ps -a 2>&1 || true"))
		}
	}
	page(t, site, "v3")
}
