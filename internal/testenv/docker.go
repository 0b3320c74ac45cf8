package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/djship/djship/internal/testdeps"
	"golang.org/x/crypto/bcrypt"
)

// Container mode's tests run Docker here, from Debian's docker.io and
// docker-compose, with a registry of their own (Debian's
// docker-registry) on loopback, where Docker allows plain HTTP. The
// images start from the machine image (machine.go) with Debian's Python,
// Django and gunicorn: no image comes from outside.

// containerPackages are what the base image adds to the machine image.
var containerPackages = []string{"gunicorn", "python3-django", "python3-psycopg2", "python3-venv"}

// NeedDocker stops the test (Missing) unless the Docker daemon answers
// here; it starts the daemon with Debian's init script when it is
// installed but not running.
func NeedDocker(t testing.TB) {
	t.Helper()
	NeedRoot(t)
	Command(t, "docker", "docker.io")
	Command(t, "docker-compose", "docker-compose")
	Command(t, "docker-registry", "docker-registry")
	if _, err := testdeps.StartDocker(context.Background()); err != nil {
		Missing(t, "a running Docker daemon", err.Error())
	}
}

// Registry is a registry on loopback with one login.
type Registry struct {
	// URL is http://127.0.0.1:<port>.
	URL string
	// Host is 127.0.0.1:<port>, as image references name it.
	Host string
	// User and Password are its login.
	User, Password string
}

// Port is the registry's port on 127.0.0.1.
func (r *Registry) Port() int {
	_, port, _ := net.SplitHostPort(r.Host)
	n, _ := strconv.Atoi(port)
	return n
}

// StartRegistry starts a registry for the test, on a free loopback port,
// that takes only its own login; it stops when the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	NeedDocker(t)
	r, stop, err := startRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return r
}

var shared struct {
	sync.Mutex
	registry *Registry
	stop     func()
	dir      string
}

// SharedRegistry is a registry like StartRegistry's that every test of
// the test binary uses: the layers of the base image are pushed to it
// once, not once per test. StopShared stops it.
func SharedRegistry(t testing.TB) *Registry {
	t.Helper()
	NeedDocker(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.registry == nil {
		dir, err := os.MkdirTemp("", "djship-registry-")
		if err != nil {
			t.Fatal(err)
		}
		r, stop, err := startRegistry(dir)
		if err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
		shared.registry, shared.stop, shared.dir = r, stop, dir
	}
	return shared.registry
}

// StopShared stops what the tests shared (SharedRegistry) and removes
// its files; a TestMain calls it once every test has run.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.registry != nil {
		shared.stop()
		os.RemoveAll(shared.dir)
		shared.registry = nil
	}
}

// startRegistry starts a registry with its files in dir; stop stops it.
func startRegistry(dir string) (r *Registry, stop func(), err error) {
	secret := make([]byte, 12)
	rand.Read(secret)
	r = &Registry{User: "djship-ci", Password: hex.EncodeToString(secret)}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	r.Host = l.Addr().String()
	l.Close()
	r.URL = "http://" + r.Host
	files := map[string]string{
		"htpasswd": r.User + ":" + string(hash) + "\n",
		"config.yml": fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\n"+
			"http: {addr: %q, secret: %s}\nauth: {htpasswd: {realm: djship-test, path: %s}}\n",
			filepath.Join(dir, "data"), r.Host, r.Password, filepath.Join(dir, "htpasswd")),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return nil, nil, err
		}
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	logFile, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("docker-registry: %w", err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := http.Get(r.URL + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized {
				return r, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			return nil, nil, fmt.Errorf("the registry did not answer on %s: %v\n%s", r.URL, err, log)
		}
	}
}

// BaseImageKey names the container base image: the machine image's key
// and the packages it adds.
func BaseImageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", ImageKey(), strings.Join(containerPackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// BaseImage returns the name of the local image the test sites' images
// start from: Debian with Python, Django, psycopg2 and gunicorn, imported
// into Docker from a root file system built like the fleet image (once,
// then cached).
func BaseImage(t testing.TB) string {
	t.Helper()
	NeedDocker(t)
	name := "djship-test/python:" + BaseImageKey()
	if exec.Command("docker", "image", "inspect", name).Run() == nil {
		return name
	}
	base := Image(t)
	dir, err := cachedImage("container-"+BaseImageKey(), func(dir string) error {
		return buildWithPackages(base, dir, containerPackages, nil, "container base image")
	})
	if err != nil {
		t.Fatalf("container base image: %v", err)
	}
	importDir(t, dir, name)
	return name
}

// postgresEntrypoint gives the PostgreSQL test image the interface of the
// postgres image of Docker Hub that djship relies on: POSTGRES_USER (the
// superuser), POSTGRES_DB, POSTGRES_PASSWORD_FILE, the data in
// /var/lib/postgresql/data, TCP with scram-sha-256 and local trust.
const postgresEntrypoint = `#!/bin/sh
set -e
data=/var/lib/postgresql/data
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
as() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  cp "$POSTGRES_PASSWORD_FILE" /tmp/pw && chown postgres /tmp/pw
  as "$bin/initdb" -D "$data" -U "$POSTGRES_USER" --pwfile=/tmp/pw --auth-host=scram-sha-256 --auth-local=trust >/dev/null
  rm -f /tmp/pw
  echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    as "$bin/postgres" --single -D "$data" postgres <<SQL >/dev/null
CREATE DATABASE "$POSTGRES_DB";
SQL
  fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" -c listen_addresses=*
`

// postgresPackages are what the PostgreSQL test image adds to the
// machine image.
var postgresPackages = []string{"postgresql"}

// PostgresImage returns the name of a local PostgreSQL image with the
// interface of the official one (postgresEntrypoint), Debian's server in
// it, imported from the machine image with postgresql installed.
func PostgresImage(t testing.TB) string {
	t.Helper()
	NeedDocker(t)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\nwithout the package's cluster\n%s\n", ImageKey(), strings.Join(postgresPackages, ","), postgresEntrypoint)
	key := hex.EncodeToString(h.Sum(nil))[:12]
	name := "djship-test/postgres:" + key
	if exec.Command("docker", "image", "inspect", name).Run() == nil {
		return name
	}
	base := Image(t)
	dir, err := cachedImage("postgres-"+key, func(dir string) error {
		if err := buildWithPackages(base, dir, postgresPackages, nil, "PostgreSQL image"); err != nil {
			return err
		}
		// The package's own cluster; the entrypoint makes the image's.
		for _, p := range []string{"etc/postgresql", "var/lib/postgresql"} {
			os.RemoveAll(filepath.Join(dir, p))
		}
		return os.WriteFile(filepath.Join(dir, "usr/local/bin/docker-entrypoint.sh"), []byte(postgresEntrypoint), 0o755)
	})
	if err != nil {
		t.Fatalf("PostgreSQL image: %v", err)
	}
	importDir(t, dir, name, `ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]`)
	return name
}

// importDir imports a root file system into Docker as an image, with
// Dockerfile instructions applied.
func importDir(t testing.TB, dir, name string, changes ...string) {
	t.Helper()
	tar := exec.Command("tar", "-C", dir, "-c", ".")
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	imp := exec.Command("docker", append(args, "-", name)...)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v: %s", name, err, out)
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar of %s: %v", dir, err)
	}
}
