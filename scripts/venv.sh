#!/bin/sh
# Creates the release's virtualenv and installs what the site declares,
# or, when the live release's virtualenv holds the same dependency set
# (its .djship-deps), reuses it: hard-linked, with the scripts that name
# its path written as new files. Then byte-compiles the sources.
# requirements.txt is read beside manage.py, or else at the top of the
# release's source.
#
# Runs as root, which runs nothing of the release: the build user
# (build-venv.sh, with an environment of its own) creates the virtualenv,
# runs pip and compiles src/, which it owns since unpacking; root only
# copies the live virtualenv by hard links, rewrites the paths in its
# scripts as data (the system's python, isolated: no site, no .pth), and
# takes the result over (take-over.sh). The proxy, when set, reaches pip
# in a configuration file of the build user's, never in argv.
# Arguments: venv python key src system requirements wheelhouse current
# user build-script take-over-script check-script dependencies...
set -e
venv=$1 python=$2 key=$3 src=$4 system=$5 requirements=$6 wheelhouse=$7 current=$8 user=$9
shift 9
build=$1 take=$2 check=$3
shift 3
r=${venv%/*}
home=$r/.build
req=$src/requirements.txt
[ -f "$req" ] || req=$r/src/requirements.txt
if [ "$requirements" = true ] && [ -f "$req" ]; then
  key="$key $(sha256sum < "$req")"
else
  req=
fi
if [ -n "$wheelhouse" ]; then wheelhouse=$src/$wheelhouse; fi
as_build() {
  runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME="$home" \
    PIP_CONFIG_FILE="$home/pip.conf" PIP_NO_CACHE_DIR=1 "$@"
}
rm -rf -- "$home"
(umask 077 && mkdir -- "$home" && : > "$home/pip.conf")
if [ -n "${http_proxy:-}" ]; then
  printf '[global]\nproxy = %s\n' "$http_proxy" > "$home/pip.conf"
fi
chown -R -- "$user:" "$home"
# Whatever happens, nothing the build user started outlives this script.
trap 'runuser -u "$user" -- sh -c "kill -KILL -1" 2>/dev/null || true' EXIT
deps=$current/venv/.djship-deps
if [ -f "$deps" ] && [ ! -L "$deps" ] && [ ! -L "$current/venv" ] && [ "$(cat -- "$deps")" = "$key" ]; then
  old=$(readlink -f -- "$current/venv")
  errors=$(mktemp)
  # Hard links: the files are root's and nobody writes them; the few
  # that name the virtualenv's path are rewritten into new files below.
  if ! cp -a -l -- "$old" "$venv" 2>"$errors"; then
    echo "copying the previous virtualenv failed ($(wc -l < "$errors") errors), the first:" >&2
    head -n 3 "$errors" >&2; rm -f "$errors"; exit 1
  fi
  rm -f "$errors"
  # Scripts name their interpreter by path: point them at the copy. The
  # paths are data, so they are compared and replaced literally; no file
  # is opened through a link, and each new file is made fresh (O_EXCL).
  "$python" -I -S - "$old" "$venv" <<'PY'
import os, stat, sys
old, new = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
bindir = os.path.join(sys.argv[2], "bin")
for name in sorted(os.listdir(bindir)):
    p = os.path.join(bindir, name)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        continue  # a link, or gone
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            continue
        data = f.read()
    if data.startswith(b"#!" + old + b"/"):
        data = b"#!" + new + data[2 + len(old):]
    elif name.lower().startswith("activate"):
        data = data.replace(old, new)
    else:
        continue
    # A new file, so that the previous release's (a hard link) stays.
    tmp = p + ".djship-new"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        os.fchown(f.fileno(), st.st_uid, st.st_gid)
        os.fchmod(f.fileno(), st.st_mode & 0o777)
    os.replace(tmp, p)
PY
  as_build "$python" -I -S -m compileall -q "$r/src"
  sh -c "$take" take-over "$user" "$r" "$check" "$r/src"
  echo reused
  exit 0
fi
mkdir -- "$venv"
chown -- "$user:" "$venv"
set -- "$venv" "$python" "$key" "$src" "$system" "$req" "$wheelhouse" "$@"
as_build sh -c "$build" build-venv "$@"
as_build "$python" -I -S -m compileall -q "$r/src"
sh -c "$take" take-over "$user" "$r" "$check" "$r/src" "$venv"
echo "virtualenv built"
