#!/bin/sh
# Stops an instance of Debian's uWSGI init script. It takes the instance
# out of apps-enabled, so that it does not start at boot, then, when drain
# is yes, waits (at most wait tenths of a second) until its socket has had
# no connection, accepted or waiting, twice in a row: ss lists the
# listening socket with its backlog and every accepted connection by
# path. It then stops the master with SIGINT, and kills its process group
# after five seconds if it is still there. It only ever stops the master
# that ran when it began: should a new start of the slot replace it
# meanwhile (a detached retire outlived by the next ship), it leaves the
# new one alone.
# Arguments: instance enabled drain wait
inst=$1 enabled=$2 drain=$3 wait=$4
sock=/run/uwsgi/app/$inst/socket pidfile=/run/uwsgi/app/$inst/pid
pid=$(cat -- "$pidfile" 2>/dev/null) || pid=
case $pid in *[!0-9]*) pid= ;; esac
ours() { [ -n "$pid" ] && [ "$(cat -- "$pidfile" 2>/dev/null)" = "$pid" ]; }
gone() { ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; }
rm -f -- "$enabled"
i=0 idle=0
while [ "$drain" = yes ] && ours && [ -S "$sock" ] && [ "$i" -lt "$wait" ]; do
  if [ -n "$(ss -xaH src "$sock" 2>/dev/null | awk '$2 != "LISTEN" || $3 != 0' | head -n 1)" ]; then
    idle=0
  else
    idle=$((idle+1))
    [ "$idle" -lt 2 ] || break
  fi
  sleep 0.1
  i=$((i+1))
done
ours || exit 0
kill -INT "$pid" 2>/dev/null
i=0
while ! gone && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
# The daemonized master's process group holds its workers too.
if ! gone; then
  group=$(awk '{ print $5 }' "/proc/$pid/stat" 2>/dev/null)
  case $group in ""|*[!0-9]*|0|1) kill -KILL "$pid" 2>/dev/null ;; *) kill -KILL -- "-$group" 2>/dev/null ;; esac
fi
if ours; then rm -f -- "$sock" "$pidfile"; fi
exit 0
