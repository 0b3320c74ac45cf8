#!/bin/sh
# Starts, or stops, a trial gunicorn of a release: one worker with the
# site's environment (and nothing of the caller's) on a socket of its
# own, so that the release answers a request before any worker that
# serves visitors is touched. start makes
# a fresh folder under /run holding the socket, the pid file and the log,
# and prints its path; stop ends the trial and removes the folder, first
# copying the log to keep-log when given.
# Arguments: start python launcher src user group environment wsgi timeout
#        or: stop folder [keep-log]
set -eu
case "$1" in
start)
    python=$2 launcher=$3 src=$4 user=$5 group=$6 environment=$7 wsgi=$8 timeout=$9
    dir=$(mktemp -d /run/djship-trial.XXXXXX)
    chown -- "$user:$group" "$dir"
    cd /
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DJSHIP_ENVIRONMENT="$environment" DJSHIP_WSGI="$wsgi" \
        start-stop-daemon --start --quiet --pidfile "$dir/pid" --chuid "$user:$group" \
        --exec "$python" -- "$launcher" --daemon --pid "$dir/pid" --bind "unix:$dir/socket" \
        --chdir "$src" --workers 1 --timeout "$timeout" --error-logfile "$dir/log" --capture-output \
        djship_wsgi:application >&2 || { echo "$dir"; exit 1; }
    echo "$dir"
    ;;
stop)
    dir=$2
    case "$dir" in
    /run/djship-trial.*) ;;
    *) echo "not a trial folder: $dir" >&2; exit 2 ;;
    esac
    if [ -f "$dir/pid" ]; then
        start-stop-daemon --stop --quiet --retry TERM/5/KILL/5 --pidfile "$dir/pid" || true
    fi
    if [ -n "${3:-}" ] && [ -f "$dir/log" ]; then
        cp -- "$dir/log" "$3"
    fi
    rm -rf -- "$dir"
    ;;
*)
    echo "usage: gunicorn-trial.sh start|stop ..." >&2
    exit 2
    ;;
esac
