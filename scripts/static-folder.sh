#!/bin/sh
# Readies the folder collectstatic writes to: the release's static/
# itself (it prints "own"), or, when the project's STATIC_ROOT is another
# folder of the release, that folder, with static/ made a link to it
# ("linked <folder>"), so that the web server serves the files Django's
# manifest names. A STATIC_ROOT
# outside the release is refused: every release needs its own.
# Arguments: release static-root owner
set -eu
r=$(realpath -e -- "$1")
want=$(realpath -m -- "$2")
owner=$3
case $want in
  "$r/static") answer=own ;;
  "$r"/*)
    mkdir -p -- "$want"
    rmdir -- "$r/static"
    ln -s -- "${want#"$r"/}" "$r/static"
    answer="linked $want"
    ;;
  *)
    echo "STATIC_ROOT is $2, outside the release ($r): each release needs its own static files, so that the live one keeps its manifest until the switch; read STATIC_ROOT from the environment, as in STATIC_ROOT = os.environ.get(\"DJANGO_STATIC_ROOT\"), which djship sets to the release's static/ when it builds and when it runs" >&2
    exit 1
    ;;
esac
if [ -L "$want" ] || [ ! -d "$want" ]; then
  echo "STATIC_ROOT is $2, which is not a folder of the release: refused" >&2
  exit 1
fi
chown -h -- "$owner" "$want"
printf '%s\n' "$answer"
