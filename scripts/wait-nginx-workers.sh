#!/bin/sh
# Waits until nginx has no worker of an older configuration left (after
# a graceful reload, those finish the requests they had taken), for at
# most the given seconds; then it goes on regardless.
# Arguments: seconds
end=$(( $(date +%s) + $1 ))
while pgrep -f '^nginx: worker process is shutting down' >/dev/null; do
	[ "$(date +%s)" -lt "$end" ] || exit 0
	sleep 0.1
done
