#!/bin/sh
# Runs as the build user, with an environment of its own: creates the
# release's virtualenv and installs what the site declares into it.
# Nothing here runs as root: pip, every setup.py and every .pth of the
# dependencies run with the build user's rights only.
# pip runs in the Django folder, and installs requirements.txt from its
# own folder, so that relative paths in them (-e ., ./package) mean what
# they mean to the developer.
# Arguments: venv python key src system requirements-file wheelhouse
# dependencies... (requirements-file is empty when none is installed)
set -e
venv=$1 python=$2 key=$3 src=$4 system=$5 req=$6 wheelhouse=$7
shift 7
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
    "$venv/bin/python" -m pip install --no-input --disable-pip-version-check --no-index --find-links "$wheelhouse" "$@"
  else
    "$venv/bin/python" -m pip install --no-input --disable-pip-version-check "$@"
  fi
}
cd "$src"
if [ $# -gt 0 ]; then pip_install "$@"; fi
if [ -n "$req" ]; then cd "${req%/*}" && pip_install -r "$req"; fi
printf '%s' "$key" > "$venv/.djship-deps"
