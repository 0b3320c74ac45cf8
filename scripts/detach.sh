#!/bin/sh
# Runs a script on the host in a session of its own, detached from this
# connection: it goes on after the run ends.
# Arguments: script name arguments...
script=$1
shift
setsid sh -c "$script" "$@" </dev/null >/dev/null 2>&1 &
