#!/bin/sh
# Hands what the build user made to root, running nothing from it: every
# process of the build user is killed first (nothing it started may
# change the tree once it is checked), then src/ is checked as unpacking
# checks it (check-release.sh: every link inside, no hard link out, no
# special file) and each other folder for hard links out and special
# files; only then is everything root's (chown -h: no link followed),
# with no setuid or setgid bit. The build user leaves the release folder.
# Arguments: user release-folder check-script folder...
set -eu
user=$1 r=$2 check=$3
shift 3
uid=$(id -u -- "$user")
# Every live process whose real, effective, saved or file-system user is
# the build user (zombies are gone already).
alive() {
  cat /proc/[0-9]*/status 2>/dev/null | awk -v u="$uid" '
    /^Name:/ { zombie = 0 }
    /^State:/ { zombie = ($2 == "Z") }
    /^Uid:/ && !zombie && ($2 == u || $3 == u || $4 == u || $5 == u) { found = 1 }
    END { exit !found }'
}
n=0
while alive; do
  # kill -1 from the build user's own shell reaches every process of
  # that user, however it detached, and nothing else.
  runuser -u "$user" -- sh -c 'kill -KILL -1' 2>/dev/null || true
  n=$((n + 1))
  if [ "$n" -gt 50 ]; then
    echo "processes of $user, the build user, are still running after 50 kills: refused" >&2
    exit 1
  fi
  sleep 0.1
done
for f; do
  case $f in
  */src) sh -c "$check" check "$f" "$r/.check" ;;
  *) sh -c "$check" check "$f" "$r/.check" any-links ;;
  esac
done
rm -f -- "$r/.check"
for f; do
  chown -R -h root:root -- "$f"
  chmod -R ug-s -- "$f"
  left=$(find "$f" -user "$user" -print -quit)
  if [ -n "$left" ]; then
    echo "$left is still the build user's after the take-over: refused" >&2
    exit 1
  fi
done
rm -rf -- "$r/.build"
setfacl -x "u:$user" -- "$r" 2>/dev/null || true
