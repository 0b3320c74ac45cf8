package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/djship/djship/remote"
)

// UpgradeSteps is the upgrade sequence of the README that each host runs
// once Upgrade holds the lock on every host and has named the release:
// steps up to "start new workers" change nothing a visitor sees (uWSGI's
// new workers start beside the live ones and must answer first);
// "switch" makes the release live; a failure after it switches back.
func UpgradeSteps() []Step {
	return []Step{
		factsStep{},
		uploadStep{},
		releaseDirStep{},
		unpackStep{},
		venvStep{},
		sharedStep{},
		snapshotStep{},
		migrateStep{},
		collectstaticStep{},
		permissionsStep{},
		startStep{},
		switchStep{},
		reloadStep{},
		healthStep{},
		retireStep{},
		recordStep{},
	}
}

// releaseDir is the folder of the release being shipped.
func (d *Deploy) releaseDir() string { return path.Join(d.Paths.Releases, d.Release) }

// srcDir is the Django folder (holding manage.py) of the release.
func (d *Deploy) srcDir() string {
	return path.Join(d.releaseDir(), "src", path.Clean(d.Settings.Django.SourceFolder))
}

// lockStep takes the deploy lock: mkdir is atomic, so of two deploys
// only one gets it; the other is told who holds it. Only an existing lock
// is held by someone: any other failure of mkdir (no project folder, a
// read-only file system) says what failed and what to do.
type lockStep struct{}

func (lockStep) Name() string { return "lock" }

// lockInfo describes this run for the lock and the deploy log.
func lockInfo(target, revision string) string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("user=%s host=%s pid=%d time=%s target=%s revision=%s", who, host, os.Getpid(), time.Now().UTC().Format(time.RFC3339), target, revision)
}

// lockScript tries to take the lock once. Its first line is "taken",
// "held" (then the holder's info), or "failed <why>" (then mkdir's or the
// shell's own message). Arguments: lock info.
const lockScript = `lock=$1 info=$2
if err=$(mkdir -m 0700 -- "$lock" 2>&1); then
  if err=$( { printf '%s\n' "$info" > "$lock/info"; } 2>&1 ); then echo taken; exit 0; fi
  rm -f -- "$lock/info"; rmdir -- "$lock" 2>/dev/null
  printf 'failed info\n%s\n' "$err"; exit 0
fi
if [ -d "$lock" ]; then echo held; cat -- "$lock/info" 2>/dev/null; exit 0; fi
base=$(dirname -- "$lock")
if [ ! -e "$base" ]; then why=missing
elif [ ! -d "$base" ]; then why=notdir
elif [ -e "$lock" ] || [ -L "$lock" ]; then why=notlock
else why=mkdir; fi
printf 'failed %s\n%s\n' "$why" "$err"`

func (lockStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if d.Check || d.lockInfo != "" {
		return false, nil
	}
	info := lockInfo(d.Action+":"+d.Env.Name, d.Revision)
	deadline := time.Now().Add(d.LockWait)
	waited := false
	for {
		out, err := d.probe(ctx, remote.Sh("sh", "-c", lockScript, "lock", d.Paths.Lock, info))
		if err != nil {
			return false, fmt.Errorf("taking the lock %s: %w", d.Paths.Lock, err)
		}
		status, rest, _ := strings.Cut(out, "\n")
		rest = strings.TrimSpace(rest)
		switch {
		case status == "taken":
			d.lockInfo = info
			return false, nil // holding the lock changes nothing of the site
		case strings.HasPrefix(status, "failed"):
			return false, d.lockFailure(strings.TrimSpace(strings.TrimPrefix(status, "failed")), rest)
		case status != "held":
			return false, fmt.Errorf("taking the lock %s: unexpected answer %q: run again, and report it if it stays", d.Paths.Lock, out)
		}
		if time.Now().Before(deadline) {
			if !waited {
				d.note("waiting up to %s for the lock held by %s", d.LockWait.Round(time.Second), describeHolder(rest))
				waited = true
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(2 * time.Second):
			}
			continue
		}
		return false, fmt.Errorf("%s is held by %s: wait for that run to finish (DJSHIP_LOCK_WAIT=5m waits for it), or, if it died, break the lock with mage unlock:%s", d.Paths.Lock, describeHolder(rest), d.Env.Name)
	}
}

// lockFailure words a lock that could not be taken though nobody holds
// it: what failed, in the tool's words, and what to do.
func (d *Deploy) lockFailure(why, message string) error {
	if message == "" {
		message = "failed without a message"
	}
	if !strings.Contains(message, d.Paths.Lock) {
		message = d.Paths.Lock + ": " + message
	}
	base := d.Paths.Base
	switch why {
	case "missing":
		return fmt.Errorf("cannot take the lock: %s: %s does not exist, the host was never provisioned for %s: run mage provision:%s first", message, base, d.Settings.Project, d.Env.Name)
	case "notdir":
		return fmt.Errorf("cannot take the lock: %s: %s is not a folder: move it away, then run mage provision:%s", message, base, d.Env.Name)
	case "notlock":
		return fmt.Errorf("cannot take the lock: %s: the lock is there but not a folder, so no djship run made it: look at it and remove it, then run again", message)
	case "info":
		return fmt.Errorf("cannot take the lock: writing its info failed: %s: free space on that file system or repair it, then run again", message)
	}
	return fmt.Errorf("cannot take the lock: %s: make %s writable for root (is its file system read-only or full, or is it immutable? lsattr -d shows that), then run again", message, base)
}

// describeHolder words a lock's info, and says when it looks stale: its
// process is gone from this machine, or it is hours old.
func describeHolder(info string) string {
	if info == "" {
		return "an unknown run (the lock has no info)"
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(info) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	s := fmt.Sprintf("%s of %s on %s (pid %s, %s, revision %s)", fields["target"], fields["user"], fields["host"], fields["pid"], fields["time"], fields["revision"])
	host, _ := os.Hostname()
	if pid, err := strconv.Atoi(fields["pid"]); err == nil && fields["host"] == host && syscall.Kill(pid, 0) == syscall.ESRCH {
		return s + "; it is stale: that process no longer runs"
	}
	if t, err := time.Parse(time.RFC3339, fields["time"]); err == nil && time.Since(t) > time.Hour {
		return s + fmt.Sprintf("; it may be stale: taken %s ago", time.Since(t).Round(time.Minute))
	}
	return s
}

// unlock releases the lock if this run holds it.
func (d *Deploy) unlock(ctx context.Context) {
	if d.lockInfo == "" {
		return
	}
	script := `if [ "$(cat -- "$1/info" 2>/dev/null)" = "$2" ]; then rm -rf -- "$1"; fi`
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := d.run(ctx, remote.Sh("sh", "-c", script, "unlock", d.Paths.Lock, d.lockInfo)); err != nil {
		d.note("warning: could not release %s: %v", d.Paths.Lock, err)
		return
	}
	d.lockInfo = ""
}

// uploadStep sends the tarball to versions/ unless it is there already.
type uploadStep struct{}

func (uploadStep) Name() string { return "upload" }

func (uploadStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return d.Host.Upload(ctx, remote.Upload{
		Path: path.Join(d.Paths.Versions, d.Tarball.Name()), LocalPath: d.Tarball.Path,
		Mode: 0o640, Owner: "root", Group: "root", Become: true,
	})
}

// releaseDirStep makes a new releases/<release>/, marked building. The
// release name is new on the host (releaseName), so the folder must not
// exist: djship never builds into a folder it did not make, least of all
// the live release.
type releaseDirStep struct{}

func (releaseDirStep) Name() string { return "release folder" }

func (releaseDirStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	out, err := d.probe(ctx, remote.Sh("sh", "-c", `if [ -e "$2" ] || [ -L "$2" ]; then echo exists; else echo new; fi; readlink -f -- "$1" || true`, "release", d.Paths.Current, d.releaseDir()))
	if err != nil {
		return false, err
	}
	exists, live, _ := strings.Cut(out, "\n")
	if live != "" && path.Base(live) == d.Release {
		return false, fmt.Errorf("release %s is live: djship never rebuilds the live release", d.Release)
	}
	if exists != "new" {
		return false, fmt.Errorf("%s exists already, though the release name was chosen new: djship never builds into a folder it did not make; ship again for a fresh name", d.releaseDir())
	}
	// mkdir without -p fails on a folder that appeared meanwhile: once
	// it succeeds, the folder is this run's.
	if _, err := d.run(ctx, remote.Sh("mkdir", "-p", "--", d.Paths.Releases)+" && "+remote.Sh("mkdir", "--", d.releaseDir())); err != nil {
		return false, err
	}
	d.built = true
	_, err = d.run(ctx, remote.Sh("sh", "-c", `mkdir -- "$1/src" && printf 'building\n' > "$1/.djship-state"`, "release", d.releaseDir()))
	return true, err
}

// unpackStep unpacks the tarball into src/, then each archive the site
// unpacks from it. Every entry was checked on this machine first; the
// host does not rely on that. The unpacking user (unpackUser) owns
// nothing but the empty src/ and a scratch folder, and unpacks each
// archive alone into an empty folder, so that no link it holds is there
// to follow yet (GNU tar and unzip make their own links last); an
// archive's content is then moved into its folder entry by entry, never
// through a link, and once all is unpacked root checks that every link
// of src/ leads inside it, that no file has a hard link outside, and only
// then takes the files over. No setuid or setgid bit survives.
type unpackStep struct{}

func (unpackStep) Name() string { return "unpack" }

// unpackUser is the system user that unpacks releases.
const unpackUser = "djship-unpack"

func (unpackStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	tarball := path.Join(d.Paths.Versions, d.Tarball.Name())
	format, err := formatOf(d.Tarball.Name())
	if err != nil {
		return false, err
	}
	args := []string{"sh", "-c", unpackScript, "unpack", d.releaseDir(), tarball, format.tarFlag, unpackUser,
		path.Clean(d.Settings.Django.SourceFolder), deflateScript, checkScript}
	for _, a := range d.Settings.Django.ArchivesToDeflate {
		args = append(args, a.Archive, a.Into)
	}
	_, err = d.run(ctx, remote.Sh(args...))
	return true, err
}

// unpackScript runs as root. Arguments: release tarball tar-flag user
// source-folder deflate-script check-script, then archive and into for
// each archive to unpack.
const unpackScript = `set -eu
r=$1 tarball=$2 flag=$3 user=$4 folder=$5 deflate=$6 check=$7
shift 7
if ! id -u "$user" >/dev/null 2>&1; then
  echo "the user $user, who unpacks releases, is missing: run mage provision for this environment first" >&2
  exit 1
fi
stage=$r/.unpack
rm -rf -- "$r/src" "$stage" "$r/.check"
mkdir -- "$r/src" "$stage"
chown -- "$user:" "$r/src" "$stage"
chmod 0700 "$stage"
trap 'rm -rf -- "$stage" "$r/.check"; setfacl -x "u:$user" -- "$r" 2>/dev/null || true' EXIT
setfacl -m "u:$user:--x" -- "$r"
src=$(realpath -e -- "$r/src")
as() { runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as tar "$flag" -x --no-same-owner --no-same-permissions -f - -C "$src" < "$tarball"
sh -c "$check" check "$src" "$r/.check"
while [ $# -ge 2 ]; do
  as sh -c "$deflate" deflate "$src" "$stage" "$src/$folder/$1" "$src/$folder/$2" "$1"
  shift 2
  sh -c "$check" check "$src" "$r/.check"
done
chmod -R ug-s -- "$src"
chown -R -h root:root -- "$src"`

// deflateScript runs as the unpacking user: one archive into an empty
// folder, then its content moved into the folder it is unpacked to.
// Arguments: src stage archive into name.
const deflateScript = `set -eu
src=$1 stage=$2 archive=$3 into=$4 name=$5
dest=$(realpath -m -- "$into")
case $dest in
  "$src"|"$src"/*) ;;
  *) echo "$name: its folder leads out of the release, to $dest" >&2; exit 1 ;;
esac
cur=$src
set -f
IFS=/
for c in ${dest#"$src"}; do
  [ -n "$c" ] || continue
  cur=$cur/$c
  if [ -L "$cur" ]; then echo "$name: $cur is a link" >&2; exit 1; fi
  [ -d "$cur" ] || mkdir -- "$cur"
done
unset IFS
set +f
w=$(mktemp -d "$stage/archive.XXXXXX")
case $archive in
  *.zip) unzip -q "$archive" -d "$w" ;;
  *) tar -x --no-same-owner --no-same-permissions -f "$archive" -C "$w" ;;
esac
cd "$w"
# find lists a folder before what it holds, so each name's folders are
# checked (or made) before it is moved; after one refusal no later batch
# moves anything.
find . -mindepth 1 -exec sh -c '
  dest=$1 mark=$2 name=$3
  shift 3
  [ ! -e "$mark" ] || exit 1
  for p; do
    d=$dest/${p#./}
    if [ -d "$p" ] && [ ! -L "$p" ]; then
      if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then
        : > "$mark"; echo "$name: ${p#./} would go through $d, which is not a folder" >&2; exit 1
      fi
      [ -d "$d" ] || mkdir -- "$d"
    else
      if [ -L "$d" ] || [ -d "$d" ] || { [ -L "$p" ] && [ -e "$d" ]; }; then
        : > "$mark"; echo "$name: ${p#./} would replace $d" >&2; exit 1
      fi
      mv -f -T -- "$p" "$d"
    fi
  done' merge "$dest" "$w.refused" "$name" {} +
cd /
rm -rf -- "$w"`

// checkScript runs as root, reading only: every link of src leads inside
// it (resolved by realpath as the kernel would, missing parts taken as
// folders), every hard link's names are all inside, nothing is special.
// Arguments: src scratch-file.
const checkScript = `set -eu
src=$1 tmp=$2
find "$src" -type l -exec sh -c '
  src=$1 tmp=$2
  shift 2
  realpath -m -z --relative-base="$src" -- "$@" > "$tmp"
  if grep -qz "^/" "$tmp"; then
    echo "a link of the release leads out of it, to $(grep -z "^/" "$tmp" | tr "\0" "\n" | head -n 1): refused" >&2
    exit 1
  fi' check "$src" "$tmp" {} +
outside=$(find "$src" -type f -links +1 -printf '%i %n\n' | sort | uniq -c | awk '$1 != $3 { print $2 }' | head -n 1)
if [ -n "$outside" ]; then
  echo "a file of the release has hard links outside it (inode $outside): refused" >&2
  exit 1
fi
special=$(find "$src" ! -type f ! -type d ! -type l -print -quit)
if [ -n "$special" ]; then
  echo "$special is a special file: refused" >&2
  exit 1
fi`

// venvStep builds the virtualenv, or reuses the previous release's when
// the dependency set is the same: hard-linked, with the scripts that name
// its path written anew.
type venvStep struct{}

func (venvStep) Name() string { return "virtualenv" }

// dependencyKey identifies what the virtualenv holds; the requirements
// file's hash is added on the host.
func (d *Deploy) dependencyKey() string {
	s := d.Settings
	return fmt.Sprintf("python=%s system=%v deps=%s requirements=%v wheelhouse=%s",
		s.Python, s.Django.SystemSitePackages, strings.Join(s.Django.Dependencies, ","), s.Django.PipInstallRequirements, s.Django.Wheelhouse)
}

func (venvStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s := d.Settings
	venv := path.Join(d.releaseDir(), "venv")
	args := []string{"sh", "-c", venvScript, "venv", venv, s.Python, d.dependencyKey(), d.srcDir(),
		fmt.Sprint(s.Django.SystemSitePackages), fmt.Sprint(s.Django.PipInstallRequirements), s.Django.Wheelhouse, d.Paths.Current}
	args = append(args, s.Django.Dependencies...)
	res, err := d.Host.Run(ctx, d.withProxy(remote.Command{Script: remote.Sh(args...), Become: true}))
	if err != nil {
		return false, err
	}
	if strings.Contains(string(res.Stdout), "reused") {
		d.note("virtualenv reused from the previous release: the dependencies did not change")
	}
	if _, err := d.run(ctx, remote.Sh(path.Join(venv, "bin", "python"), "-c", "import django")); err != nil {
		return true, fmt.Errorf("the virtualenv cannot import Django, so migrate could not run: add Django to django.dependencies (pip), or install Debian's with packages: [python3-django] and django.system_site_packages: true (%w)", err)
	}
	return true, nil
}

// venvScript creates or reuses the virtualenv and installs what the site
// declares. Arguments: venv python key src system requirements wheelhouse
// current deps...
const venvScript = `set -e
venv=$1 python=$2 key=$3 src=$4 system=$5 requirements=$6 wheelhouse=$7 current=$8
shift 8
if [ "$requirements" = true ] && [ -f "$src/requirements.txt" ]; then
  key="$key $(sha256sum < "$src/requirements.txt")"
fi
if [ -f "$current/venv/.djship-deps" ] && [ "$(cat "$current/venv/.djship-deps")" = "$key" ]; then
  old=$(readlink -f "$current/venv")
  errors=$(mktemp)
  # Hard links: the files are root's and nobody writes them; the few
  # that name the virtualenv's path are rewritten into new files below.
  if ! cp -a -l "$old" "$venv" 2>"$errors"; then
    echo "copying the previous virtualenv failed ($(wc -l < "$errors") errors), the first:" >&2
    head -n 3 "$errors" >&2; rm -f "$errors"; exit 1
  fi
  rm -f "$errors"
  # Scripts name their interpreter by path: point them at the copy. The
  # paths are data, so they are compared and replaced literally.
  "$python" - "$old" "$venv" <<'PY'
import os, sys
old, new = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
bindir = os.path.join(sys.argv[2], "bin")
for name in sorted(os.listdir(bindir)):
    p = os.path.join(bindir, name)
    if os.path.islink(p) or not os.path.isfile(p):
        continue
    with open(p, "rb") as f:
        data = f.read()
    if data.startswith(b"#!" + old + b"/"):
        data = b"#!" + new + data[2 + len(old):]
    elif name.lower().startswith("activate"):
        data = data.replace(old, new)
    else:
        continue
    # A new file, so that the previous release's (a hard link) stays.
    tmp = p + ".djship-new"
    with open(tmp, "wb") as f:
        f.write(data)
    st = os.stat(p)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, p)
PY
  echo reused
  exit 0
fi
flag=
if [ "$system" = true ]; then flag=--system-site-packages; fi
if ! "$python" -m venv $flag "$venv"; then
  # ensurepip hides why it failed; a full disk is the usual cause.
  free=$(df -Pk -- "${venv%/*}" 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ -n "$free" ] && [ "$free" -lt 65536 ]; then
    echo "no space left on device: the file system of ${venv%/*} has ${free} kB free, too little for a virtualenv; free some and ship again" >&2
  fi
  exit 1
fi
pip_install() {
  if [ -n "$wheelhouse" ]; then
    "$venv/bin/python" -m pip install --no-input --disable-pip-version-check --no-index --find-links "$src/$wheelhouse" "$@"
  else
    "$venv/bin/python" -m pip install --no-input --disable-pip-version-check "$@"
  fi
}
if [ $# -gt 0 ]; then pip_install "$@"; fi
if [ "$requirements" = true ] && [ -f "$src/requirements.txt" ]; then pip_install -r "$src/requirements.txt"; fi
printf '%s' "$key" > "$venv/.djship-deps"
echo "virtualenv built"`

// sharedStep links the shared folders into the release.
type sharedStep struct{}

func (sharedStep) Name() string { return "shared folders" }

func (sharedStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	r := d.releaseDir()
	script := remote.Sh("ln", "-sfn", "../../shared/media", path.Join(r, "media")) + " && " +
		remote.Sh("ln", "-sfn", "../../shared/logs", path.Join(r, "logs")) + " && " +
		remote.Sh("mkdir", "-p", "--", path.Join(r, "static"))
	_, err := d.run(ctx, script)
	return true, err
}

// snapshotStep saves the database before migrations: sqlite with its
// online backup, PostgreSQL with pg_dump -Fc.
type snapshotStep struct{}

func (snapshotStep) Name() string { return "database snapshot" }

func (snapshotStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	s := d.Settings
	if s.Database.Engine == "sqlite" {
		db := path.Join(d.Paths.DB, s.Database.Path)
		out, err := d.probe(ctx, remote.Sh("sh", "-c", `if [ -f "$1" ]; then sqlite3 "$1" ".backup '$2'" && chmod 0600 "$2" && echo saved; fi`, "snapshot", db, path.Join(d.Paths.Snapshots, d.Release+".sqlite3")))
		if err != nil {
			return false, err
		}
		return out == "saved", nil
	}
	script := `set -e
umask 077
IFS= read -r PGPASSWORD || true
export PGPASSWORD
pg_dump -Fc --no-password -h "$2" -p "$3" -U "$4" -f "$5.partial" "$1"
mv -f "$5.partial" "$5"`
	host := s.Database.Host
	if host == "" {
		host = "localhost"
	}
	_, err := d.Host.Run(ctx, remote.Command{
		Script: remote.Sh("sh", "-c", script, "snapshot", s.Database.Name, host, fmt.Sprint(s.Database.Port), s.Database.User, path.Join(d.Paths.Snapshots, d.Release+".dump")),
		Stdin:  strings.NewReader(d.Secrets[s.Database.PasswordSecret] + "\n"),
		Become: true, Quiet: true,
	})
	return err == nil, err
}

// migrateStep runs manage.py migrate as the application's user.
type migrateStep struct{}

func (migrateStep) Name() string { return "migrate" }

func (migrateStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	return true, d.manage(ctx, "migrate", "--noinput")
}

// collectstaticStep collects the static files into the release's static/
// as the application's user, then byte-compiles the sources.
type collectstaticStep struct{}

func (collectstaticStep) Name() string { return "collectstatic" }

// manageCommand is manage.py of a release run as the application's user,
// with the environment the application server gives it (and extra
// NAME=VALUE words), in the release's Django folder.
func (d *Deploy) manageCommand(release string, extra []string, args ...string) remote.Command {
	r := path.Join(d.Paths.Releases, release)
	words := []string{"runuser", "-u", d.Settings.App.User, "--", "env"}
	for _, e := range d.appEnvironment() {
		words = append(words, e.Name+"="+e.Value)
	}
	words = append(words, extra...)
	words = append(words, "PYTHONDONTWRITEBYTECODE=1", path.Join(r, "venv", "bin", "python"), "manage.py")
	words = append(words, args...)
	return remote.Command{Script: remote.Sh(words...), Dir: path.Join(r, "src", path.Clean(d.Settings.Django.SourceFolder)), Become: true}
}

// manage runs manage.py in the release being shipped, its output shown,
// with static/ as DJANGO_STATIC_ROOT.
func (d *Deploy) manage(ctx context.Context, args ...string) error {
	c := d.manageCommand(d.Release, []string{"DJANGO_STATIC_ROOT=" + path.Join(d.releaseDir(), "static")}, args...)
	_, err := d.Host.Run(ctx, c)
	if err != nil {
		return fmt.Errorf("manage.py %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (collectstaticStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	static := path.Join(d.releaseDir(), "static")
	// The application writes static/ during collectstatic only.
	if _, err := d.run(ctx, remote.Sh("chown", "--", d.Settings.App.User+":"+d.Settings.App.Group, static)); err != nil {
		return false, err
	}
	if err := d.manage(ctx, "collectstatic", "--noinput"); err != nil {
		return false, err
	}
	_, err := d.run(ctx, remote.Sh(path.Join(d.releaseDir(), "venv", "bin", "python"), "-m", "compileall", "-q", path.Join(d.releaseDir(), "src")))
	return true, err
}

// permissionsStep hands the release to root, readable by the application's
// group; the web server's group reads static/ only. No setuid or setgid
// bit is left. chown -h, chmod -R and setfacl -P never follow a link.
type permissionsStep struct{}

func (permissionsStep) Name() string { return "permissions" }

func (permissionsStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	r, s := d.releaseDir(), d.Settings
	script := `set -e
r=$1 group=$2 web=$3
chown -R -h root:"$group" "$r"
chmod -R u+rwX,g+rX,g-w,o-rwx,ug-s "$r"
setfacl -R -P -m "g:$web:rX" "$r/static"
setfacl -R -P -d -m "g:$web:rX" "$r/static"
chmod 0750 "$r"`
	_, err := d.run(ctx, remote.Sh("sh", "-c", script, "permissions", r, s.App.Group, s.Web.Group))
	return true, err
}

// switchStep points current at the new release atomically (a new link,
// then a rename over the old one) and, for uWSGI, app.sock at the new
// release's instance: the web server's next request reaches it.
type switchStep struct{}

func (switchStep) Name() string { return "switch" }

func (switchStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.switchTo(ctx, d.Release); err != nil {
		return false, err
	}
	d.switched = true
	return true, d.switchSlot(ctx)
}

// switchTo points current at releases/<release>.
func (d *Deploy) switchTo(ctx context.Context, release string) error {
	tmp := d.Paths.Current + ".djship-new"
	_, err := d.run(ctx, remote.Sh("ln", "-sfn", "--", path.Join("releases", release), tmp)+" && "+remote.Sh("mv", "-fT", "--", tmp, d.Paths.Current))
	return err
}

// reloadStep reloads gunicorn gracefully so that it serves the new
// release, or starts it on the first deploy. uWSGI needs none: its new
// instance serves since the switch.
type reloadStep struct{}

func (reloadStep) Name() string { return "reload" }

func (reloadStep) Skip(d *Deploy) bool { return d.Settings.AppServer == "uwsgi" }

func (reloadStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if err := d.reloadApp(ctx); err != nil {
		if tail := d.appLogTail(ctx); tail != "" {
			err = fmt.Errorf("%w\n  application server log:\n    %s", err, strings.ReplaceAll(tail, "\n", "\n    "))
		}
		return true, err
	}
	return true, nil
}

// reloadApp makes gunicorn serve what current points to: it re-executes
// with USR2 (without systemd; the new master starts beside the old one)
// or restarts behind its systemd socket, which keeps accepting
// connections meanwhile.
func (d *Deploy) reloadApp(ctx context.Context) error {
	svc := d.appService()
	if _, err := d.run(ctx, svc.status); err != nil {
		_, err := d.run(ctx, svc.start)
		return err
	}
	reload := svc.reload
	if d.init == "systemd" {
		reload = remote.Sh("systemctl", "restart", "gunicorn-"+d.Settings.Project+".service")
	}
	_, err := d.run(ctx, reload)
	return err
}

// recordStep writes the deploy log, marks the release complete and prunes
// old releases. After the switch, a failure here is only a warning.
type recordStep struct{}

func (recordStep) Name() string { return "record, prune" }

// logEntry is one line of deploy.log.
type logEntry struct {
	Time     string `json:"time"`
	User     string `json:"user"`
	Action   string `json:"action"`
	Release  string `json:"release"`
	Revision string `json:"revision"`
	Previous string `json:"previous,omitempty"`
	Result   string `json:"result"`
}

func (d *Deploy) logDeploy(ctx context.Context, action, release, revision, result string) error {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	line, _ := json.Marshal(logEntry{Time: time.Now().UTC().Format(time.RFC3339), User: who, Action: action, Release: release, Revision: revision, Previous: d.previous, Result: result})
	_, err := d.run(ctx, remote.Sh("sh", "-c", `printf '%s\n' "$2" >> "$1" && chmod 0640 "$1"`, "log", d.Paths.Log, string(line)))
	return err
}

func (recordStep) Run(ctx context.Context, d *Deploy) (bool, error) {
	if _, err := d.run(ctx, remote.Sh("sh", "-c", `printf 'complete\n' > "$1/.djship-state"`, "state", d.releaseDir())); err != nil {
		d.note("warning: could not mark %s complete: %v", d.Release, err)
	}
	if err := d.logDeploy(ctx, "deploy", d.Release, d.Revision, "ok"); err != nil {
		d.note("warning: could not write %s: %v", d.Paths.Log, err)
	}
	if err := d.prune(ctx); err != nil {
		d.note("warning: pruning old releases failed, the new release is live: %v", err)
	}
	return true, nil
}

// prune removes failed and unfinished releases, and complete ones beyond
// keep_releases, oldest first; never the live release or the previous one.
func (d *Deploy) prune(ctx context.Context) error {
	out, err := d.probe(ctx, remote.Sh("sh", "-c", `cd "$1" && for r in */; do r=${r%/}; [ -d "$r" ] || continue; printf '%s %s %s\n' "$(stat -c %Y "$r/.djship-state" 2>/dev/null || echo 0)" "$(cat "$r/.djship-state" 2>/dev/null || echo unknown)" "$r"; done`, "list", d.Paths.Releases))
	if err != nil {
		return err
	}
	type rel struct {
		time        string
		state, name string
	}
	var complete []rel
	var remove []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] == d.Release || f[2] == d.previous {
			continue
		}
		if f[1] == "complete" {
			complete = append(complete, rel{f[0], f[1], f[2]})
		} else {
			remove = append(remove, f[2])
		}
	}
	sort.Slice(complete, func(i, j int) bool { return complete[i].time > complete[j].time })
	keep := d.Settings.KeepReleases - 1 // the new release counts
	if d.previous != "" {
		keep--
	}
	for i, r := range complete {
		if i >= keep {
			remove = append(remove, r.name)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	words := []string{"sh", "-c", `cd "$1" && shift && for r in "$@"; do rm -rf -- "releases/$r" "snapshots/$r.sqlite3" "snapshots/$r.dump"; done`, "prune", d.Paths.Base}
	_, err = d.run(ctx, remote.Sh(append(words, remove...)...))
	if err == nil {
		d.note("pruned %s", strings.Join(remove, ", "))
	}
	return err
}
