#!/bin/sh
# Hands a release to root, readable by the application's group; the web
# server's group reads static/ only. No setuid or setgid bit is left;
# chown -h, chmod -R and setfacl -P never follow a link.
# Arguments: release-folder app-group web-group
set -e
r=$1 group=$2 web=$3
chown -R -h root:"$group" "$r"
chmod -R u+rwX,g+rX,g-w,o-rwx,ug-s "$r"
setfacl -R -P -m "g:$web:rX" "$r/static"
setfacl -R -P -d -m "g:$web:rX" "$r/static"
chmod 0750 "$r"
