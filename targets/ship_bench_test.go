package targets

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/djship/djship/internal/testenv"
	"github.com/djship/djship/remote"
	"github.com/djship/djship/sites"
	"github.com/djship/djship/sites/secrets"
	"github.com/djship/djship/templates"
)

// BenchmarkShip ships the example site (nginx, uWSGI, sqlite) to this
// machine over SSH, side by side with a floor: a script that runs the same
// work in a single ssh session with nothing skipped (a fresh virtualenv,
// migrate, collectstatic, a uWSGI reload). Each round times a full ship
// to a clean host and a code-only re-ship (dependencies and static files
// unchanged), for djship and the floor, and counts the SSH connections and
// sessions djship opened; then the code-only upgrade is timed with 2, 4
// and 8 workers. It prints medians and ratios (DJSHIP_BENCH_LOG=file
// keeps djship's own output of every ship); bench/ship.sh runs it:
//
//	DJSHIP_BENCH_ROUNDS=5 go test -run '^$' -bench '^BenchmarkShip$' -benchtime 1x -timeout 60m ./targets
func BenchmarkShip(b *testing.B) {
	ssh, sshd, rounds := benchStack(b, 5)
	site, src := exampleSite(b, shipCase{web: "nginx", app: "uwsgi", db: "sqlite", connection: "ssh"}, 60, sshd)
	env := site.Environments["test"]
	tarball := codeOnlyReleases(b, site, src)
	first, firstRev := tarball()
	var m benchFigures
	for i := 0; i < b.N*rounds; i++ {
		removeSite(site)
		r := benchDjship(b, site, sshd, first)
		m.full, m.fullConns, m.fullSessions = append(m.full, r.wall), append(m.fullConns, r.logins), append(m.fullSessions, r.sessions)
		m.fullCommands = append(m.fullCommands, r.commands)
		code, _ := tarball()
		r = benchDjship(b, site, sshd, code)
		m.code = append(m.code, r.wall)
		m.codeConns, m.codeSessions = append(m.codeConns, r.logins), append(m.codeSessions, r.sessions)
		m.codeCommands = append(m.codeCommands, r.commands)

		removeSite(site)
		m.fullFloor = append(m.fullFloor, benchFloor(b, ssh, site, sshd, first, firstRev, true))
		code, rev := tarball()
		m.codeFloor = append(m.codeFloor, benchFloor(b, ssh, site, sshd, code, rev, false))
	}
	// The code-only upgrade with more workers: provision starts them, then
	// three code-only ships each.
	removeSite(site)
	benchDjship(b, site, sshd, first)
	scaling := map[int]time.Duration{}
	for _, workers := range []int{2, 4, 8} {
		env.Hosts[0].Settings.App.Workers = workers
		var ups []time.Duration
		for j := 0; j < 3; j++ {
			code, _ := tarball()
			ups = append(ups, benchUpgrade(b, site, code))
		}
		scaling[workers] = median(ups)
		if workers == 2 {
			m.codeUpgrade = ups
		}
	}
	env.Hosts[0].Settings.App.Workers = 2
	m.print(os.Stdout, rounds, scaling)
	b.ReportMetric(median(m.full).Seconds(), "full-s")
	b.ReportMetric(median(m.fullFloor).Seconds(), "full-floor-s")
	b.ReportMetric(median(m.code).Seconds(), "code-only-s")
	b.ReportMetric(median(m.codeFloor).Seconds(), "code-only-floor-s")
	b.ReportMetric(median(m.codeUpgrade).Seconds(), "code-only-upgrade-s")
}

// benchFigures are the measurements of every round.
type benchFigures struct {
	full, fullFloor, code, codeFloor, codeUpgrade    []time.Duration
	fullConns, fullSessions, codeConns, codeSessions []int
	fullCommands, codeCommands                       []int
}

func (m benchFigures) print(w io.Writer, rounds int, scaling map[int]time.Duration) {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	ratio := func(a, b []time.Duration) string {
		return fmt.Sprintf("%.2f×", median(a).Seconds()/median(b).Seconds())
	}
	fmt.Fprintf(w, "\nship of the example site over SSH to this machine, medians of %d rounds\n", rounds)
	fmt.Fprintf(w, "%-18s %10s %10s %8s %12s %9s %9s\n", "", "djship", "floor", "ratio", "connections", "sessions", "commands")
	fmt.Fprintf(w, "%-18s %10s %10s %8s %12d %9d %9d\n", "full ship", sec(median(m.full)), sec(median(m.fullFloor)), ratio(m.full, m.fullFloor), medianInt(m.fullConns), medianInt(m.fullSessions), medianInt(m.fullCommands))
	fmt.Fprintf(w, "%-18s %10s %10s %8s %12d %9d %9d\n", "code-only re-ship", sec(median(m.code)), sec(median(m.codeFloor)), ratio(m.code, m.codeFloor), medianInt(m.codeConns), medianInt(m.codeSessions), medianInt(m.codeCommands))
	list := func(ds []time.Duration) string {
		var parts []string
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
		}
		return strings.Join(parts, " ")
	}
	fmt.Fprintf(w, "every round, seconds: full ship djship %s, floor %s; code-only djship %s, floor %s\n", list(m.full), list(m.fullFloor), list(m.code), list(m.codeFloor))
	fmt.Fprintf(w, "code-only upgrade (upgrade:<env> after provision:<env>): %s with 2 workers", sec(median(m.codeUpgrade)))
	var workers []int
	for n := range scaling {
		workers = append(workers, n)
	}
	sort.Ints(workers)
	for _, n := range workers {
		fmt.Fprintf(w, "; %d workers %s", n, sec(scaling[n]))
	}
	fmt.Fprintln(w)
}

// benchStack makes this machine ready for a benchmark that ships the
// example site over SSH (nginx in front, Apache stopped) and returns the
// ssh client, the sshd and the rounds to run: DJSHIP_BENCH_ROUNDS, or
// rounds.
func benchStack(b *testing.B, rounds int) (string, *testenv.SSHD, int) {
	needStack(b)
	testenv.Django(b)
	client := testenv.Command(b, "ssh", "openssh-client")
	sshd := testenv.StartSSHD(b)
	b.Cleanup(stopWebServers)
	exec.Command("service", "apache2", "stop").Run()
	if v, err := strconv.Atoi(os.Getenv("DJSHIP_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	return client, sshd, rounds
}

// codeOnlyReleases returns a function that packages a new revision of
// the site whose only change is a line of a view's source, and returns
// the tarball and the revision.
func codeOnlyReleases(b *testing.B, site *sites.Site, src string) func() (string, string) {
	revisions := 0
	return func() (string, string) {
		revisions++
		rev := fmt.Sprintf("b%d", revisions)
		views := filepath.Join(src, "notes", "views.py")
		data, err := os.ReadFile(views)
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(views, append(data, []byte("# "+rev+"\n")...), 0o644)
		a, err := buildRelease(b, site, map[string]string{"REVISION": rev})
		if err != nil {
			b.Fatal(err)
		}
		return a.Path, rev
	}
}

// benchRun is one ship by djship.
type benchRun struct {
	wall                       time.Duration
	logins, sessions, commands int
}

// benchDjship ships the tarball as mage ship does (provision and upgrade
// in one run over one connection), and counts the logins the sshd
// accepted.
func benchDjship(b *testing.B, site *sites.Site, sshd *testenv.SSHD, tarball string) benchRun {
	ctx := context.Background()
	var out bytes.Buffer
	opts := Options{Out: &out, Secrets: shipSecrets, Connections: &Connections{}}
	logins := sshd.Accepted(b)
	start := time.Now()
	if _, err := Ship(ctx, site, "test", tarball, opts); err != nil {
		b.Fatalf("ship: %v\n%s", err, out.String())
	}
	end := time.Now()
	if log := os.Getenv("DJSHIP_BENCH_LOG"); log != "" {
		if f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Write(out.Bytes())
			f.Close()
		}
	}
	r := benchRun{wall: end.Sub(start), sessions: opts.Connections.Sessions(), commands: opts.Connections.Commands()}
	opts.Connections.Close()
	r.logins = sshd.Accepted(b) - logins
	return r
}

// benchUpgrade runs provision, then times the upgrade to the tarball
// alone, as provision:<env> and upgrade:<env> do.
func benchUpgrade(b *testing.B, site *sites.Site, tarball string) time.Duration {
	ctx := context.Background()
	var out bytes.Buffer
	opts := Options{Out: &out, Secrets: shipSecrets, Connections: &Connections{}}
	defer opts.Connections.Close()
	if err := Provision(ctx, site, "test", opts); err != nil {
		b.Fatalf("provision: %v\n%s", err, out.String())
	}
	start := time.Now()
	if _, err := Upgrade(ctx, site, "test", tarball, opts); err != nil {
		b.Fatalf("upgrade: %v\n%s", err, out.String())
	}
	return time.Since(start)
}

// floorScript does a ship's work in one session, as root, with the same
// commands djship runs: when full, what provision does (packages checked,
// user, folders and ACLs, a self-signed certificate, the secret file, the
// uWSGI configuration of both slots and the nginx site, each checked by
// its program, nginx reloaded), then the upgrade with nothing skipped
// (the lock, the release unpacked by djship-unpack and checked by
// djship's own check script, a fresh virtualenv that must import Django,
// migrate, collectstatic, the reload, the deploy log). Its standard input is a tar of the files it installs.
// Arguments: full base release project user web-group python url port
// revision tarball packages check-script, then the application's
// environment (NAME=VALUE...).
const floorScript = `set -eu
full=$1 base=$2 rel=$3 project=$4 user=$5 web=$6 python=$7 url=$8 port=$9 revision=${10} tarball=${11} packages=${12} check=${13}
shift 13
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
tar -x -C "$t"
r=$base/releases/$rel
if [ "$full" = yes ]; then
  dpkg-query -W $packages >/dev/null
  id -u "$user" >/dev/null 2>&1 || useradd --system --user-group --home-dir "$base" --no-create-home --shell /usr/sbin/nologin "$user"
  id -u djship-unpack >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin djship-unpack
  mkdir -p "$base/releases" "$base/shared/media" "$base/shared/logs" "$base/shared/db" "$base/snapshots" "$base/versions"
  chown root:"$user" "$base" "$base/releases" "$base/shared"
  chmod 0750 "$base" "$base/releases" "$base/shared"
  chown "$user:$user" "$base/shared/media" "$base/shared/logs" "$base/shared/db"
  chmod 0700 "$base/snapshots"
  setfacl -m "g:$web:--x" "$base" "$base/releases" "$base/shared"
  setfacl -m "u:djship-unpack:--x" "$base" "$base/releases"
  setfacl -m "g:$web:r-x" "$base/shared/media"
  mkdir -p /etc/nginx/ssl
  key=/etc/nginx/ssl/$project.key crt=/etc/nginx/ssl/$project.crt
  [ -s "$key" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$url" -addext "subjectAltName=DNS:$url" -keyout "$key" -out "$crt" 2>/dev/null
  chown root:"$web" "$key"; chmod 0640 "$key"
  install -m 0640 -o root -g "$user" "$t/secrets.py" "$base/secrets.py"
  install -m 0640 -o root -g "$user" "$t/environment.json" "$base/environment.json"
  install -D -m 0644 "$t/djship_wsgi.py" /usr/local/lib/djship/djship_wsgi.py
  # djship checks and writes one configuration per uWSGI slot.
  uwsgi --strict --ini "$t/uwsgi.ini" --get chdir >/dev/null
  uwsgi --strict --ini "$t/uwsgi.ini" --get chdir >/dev/null
  install -m 0644 "$t/uwsgi.ini" "/etc/uwsgi/apps-available/$project.b.ini"
  install -m 0644 "$t/uwsgi.ini" "/etc/uwsgi/apps-available/$project.ini"
  ln -sfn "../apps-available/$project.ini" "/etc/uwsgi/apps-enabled/$project.ini"
  install -m 0644 "$t/nginx.conf" "/etc/nginx/sites-available/$project.conf"
  ln -sfn "../sites-available/$project.conf" "/etc/nginx/sites-enabled/$project.conf"
  nginx -t -q
  if service nginx status >/dev/null 2>&1; then service nginx reload >/dev/null; else service nginx start >/dev/null; fi
fi
mkdir -m 0700 "$base/deploy.lock"
install -m 0640 "$t/$tarball" "$base/versions/$tarball"
mkdir "$r" "$r/src"
printf 'building\n' > "$r/.djship-state"
chown djship-unpack: "$r/src"
runuser -u djship-unpack -- tar -xz --no-same-owner --no-same-permissions -f - -C "$r/src" < "$base/versions/$tarball"
sh -c "$check" check "$r/src" "$t/check"
mkdir "$r/venv"
chown djship-unpack: "$r/venv"
runuser -u djship-unpack -- env -i PATH=/usr/bin:/bin "$python" -m venv --system-site-packages "$r/venv"
runuser -u djship-unpack -- env -i PATH=/usr/bin:/bin "$python" -I -S -m compileall -q "$r/src"
chmod -R ug-s -- "$r/src" "$r/venv"
chown -R -h root:root -- "$r/src" "$r/venv"
runuser -u "$user" -- env -i PATH=/usr/bin:/bin "$r/venv/bin/python" -c "import django"
ln -sfn ../../shared/media "$r/media"
ln -sfn ../../shared/logs "$r/logs"
mkdir -p "$r/static"
db=$base/shared/db/db.sqlite3
if [ -f "$db" ]; then sqlite3 "$db" ".backup '$base/snapshots/$rel.sqlite3'"; fi
chown "$user:$user" "$r/static"
cd "$r/src"
runuser -u "$user" -- env "$@" DJANGO_STATIC_ROOT="$r/static" "$r/venv/bin/python" manage.py migrate --noinput >/dev/null
runuser -u "$user" -- env "$@" DJANGO_STATIC_ROOT="$r/static" "$r/venv/bin/python" manage.py collectstatic --noinput >/dev/null
chown -R -h root:"$user" "$r"
chmod -R u+rwX,g+rX,g-w,o-rwx "$r"
setfacl -R -m "g:$web:rX" "$r/static"
chmod 0750 "$r"
ln -sfn "releases/$rel" "$base/current.new"
mv -fT "$base/current.new" "$base/current"
if /etc/init.d/uwsgi status "$project" >/dev/null 2>&1; then /etc/init.d/uwsgi reload "$project" >/dev/null; else /etc/init.d/uwsgi start "$project" >/dev/null; fi
i=0
until curl -sfk --resolve "$url:$port:127.0.0.1" "https://$url:$port/" | grep -qF ">$revision<"; do
  i=$((i+1))
  if [ "$i" -ge 600 ]; then echo "the floor's release does not answer" >&2; exit 1; fi
  sleep 0.05
done
printf 'complete\n' > "$r/.djship-state"
printf '{"release":"%s","result":"ok"}\n' "$rel" >> "$base/deploy.log"
rm -rf "$base/deploy.lock"`

// benchFloor runs floorScript over one OpenSSH session and times it.
func benchFloor(b *testing.B, client string, site *sites.Site, sshd *testenv.SSHD, tarball, revision string, full bool) time.Duration {
	env := site.Environments["test"]
	d := NewDeploy(site, env, env.Hosts[0].Settings, nil, nil)
	s := d.Settings
	ts := d.templateSite()
	ini, err := templates.Render(templates.UWSGIApp, ts)
	if err != nil {
		b.Fatal(err)
	}
	ts.Socket = "/run/uwsgi/app/" + s.Project + "/socket"
	conf, err := templates.Render(templates.NginxSite, ts)
	if err != nil {
		b.Fatal(err)
	}
	py, err := secrets.PythonFile(shipSecrets)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range shipSecrets {
		d.Secrets[k] = v
	}
	values, _ := d.applicationEnvironment()
	envFile, err := templates.RenderEnvironment(values)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(tarball)
	if err != nil {
		b.Fatal(err)
	}
	var bundle bytes.Buffer
	tw := tar.NewWriter(&bundle)
	for name, content := range map[string][]byte{"uwsgi.ini": ini, "nginx.conf": conf, "secrets.py": py, "environment.json": envFile, "djship_wsgi.py": []byte(templates.WSGILauncher), filepath.Base(tarball): data} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write(content)
	}
	tw.Close()
	yes := "no"
	if full {
		yes = "yes"
	}
	args := []string{"sudo", "-n", "sh", "-c", floorScript, "floor", yes, d.Paths.Base, "floor-" + revision, s.Project, s.App.User, s.Web.Group,
		s.Python, s.URL, fmt.Sprint(s.Web.HTTPSPort), revision, filepath.Base(tarball), strings.Join(d.packages(), " "), script("check-release.sh")}
	public := d.appEnvironment()
	for _, k := range slices.Sorted(maps.Keys(public)) {
		args = append(args, k+"="+public[k])
	}
	cmd := exec.Command(client, "-F", "none", "-i", testenv.TestKeys().Sudo, "-p", fmt.Sprint(sshd.Port),
		"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+sshd.KnownHosts, "-o", "ControlMaster=no", "-o", "ControlPath=none",
		testenv.SudoUser+"@127.0.0.1", remote.Sh(args...))
	cmd.Stdin = &bundle
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("floor: %v\n%s", err, out)
	}
	return time.Since(start)
}

// median is the middle of the durations (the mean of the two middle ones
// for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(ns []int) int {
	ds := make([]time.Duration, len(ns))
	for i, n := range ns {
		ds[i] = time.Duration(n)
	}
	return int(median(ds))
}
