#!/bin/sh
# Hands a release to root, readable by the application's group; the web
# server's group reads the static files only (static/, or the folder of
# the release it links to), and passes through the folders above them.
# No setuid or setgid bit is left; chown -h, chmod -R and setfacl -P never
# follow a link.
# Arguments: release-folder app-group web-group
set -e
r=$(realpath -e -- "$1") group=$2 web=$3
chown -R -h root:"$group" "$r"
chmod -R u+rwX,g+rX,g-w,o-rwx,ug-s "$r"
static=$(realpath -e -- "$r/static")
case $static in
  "$r"/*) ;;
  *) echo "static/ leads out of the release, to $static: refused" >&2; exit 1 ;;
esac
setfacl -R -P -m "g:$web:rX" "$static"
setfacl -R -P -d -m "g:$web:rX" "$static"
d=$(dirname -- "$static")
while [ "$d" != "$r" ]; do
  setfacl -m "g:$web:--x" -- "$d"
  d=$(dirname -- "$d")
done
chmod 0750 "$r"
