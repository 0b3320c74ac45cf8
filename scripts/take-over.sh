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
pidns=$(stat -L -c %i /proc/self/ns/pid) userns=$(stat -L -c %i /proc/self/ns/user)
# members prints the live processes (zombies are gone already) whose
# real, effective, saved or file-system user is the build user, in this
# PID namespace or in one inside a user namespace not the host's: the
# build user can make a PID namespace only inside a user namespace of its
# own, so a process there is the build's however it hid, while a
# container's process under the same user number (root made its PID
# namespace, in the host's user namespace) is left alone.
members() {
  stat -L -c '%n %i' /proc/[0-9]*/ns/pid /proc/[0-9]*/ns/user 2>/dev/null |
    awk -v pidns="$pidns" -v userns="$userns" '
      { split($1, p, "/"); if (p[5] == "pid") pid[p[3]] = $2; else user[p[3]] = $2 }
      END { for (n in pid) if (pid[n] == pidns || (n in user && user[n] != userns)) print "/proc/" n "/status" }' |
    xargs -r grep -s -H -E '^(State|Uid):' |
    awk -F '[:\t ]+' -v u="$uid" '
      $2 == "State" { zombie = ($3 == "Z"); next }
      $2 == "Uid" && !zombie && ($3 == u || $4 == u || $5 == u || $6 == u) { split($1, p, "/"); print p[3] }'
}
n=0
while pids=$(members) && [ -n "$pids" ]; do
  # The build user kills them itself: a number reused meanwhile by
  # another user's process is out of its reach.
  # shellcheck disable=SC2086 # one argument per process
  runuser -u "$user" -- sh -c 'kill -KILL "$@"' kill $pids 2>/dev/null || true
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
