#!/bin/sh
# Creates the release's virtualenv and installs what the site declares,
# or, when the live release's virtualenv holds the same dependency set
# (its .djship-deps), reuses it: hard-linked, with the scripts that name
# its path written as new files. requirements.txt is read beside
# manage.py, or else at the top of the release's source.
# Arguments: venv python key src system requirements wheelhouse current
# dependencies...
set -e
venv=$1 python=$2 key=$3 src=$4 system=$5 requirements=$6 wheelhouse=$7 current=$8
shift 8
req=$src/requirements.txt
[ -f "$req" ] || req=${venv%/*}/src/requirements.txt
if [ "$requirements" = true ] && [ -f "$req" ]; then
  key="$key $(sha256sum < "$req")"
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
if [ "$requirements" = true ] && [ -f "$req" ]; then pip_install -r "$req"; fi
printf '%s' "$key" > "$venv/.djship-deps"
echo "virtualenv built"
