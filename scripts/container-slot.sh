#!/bin/sh
# Controls one slot of a site in container mode: the compose project that
# runs the release the slot links to (its compose.yml), with Docker
# Compose (the docker compose plugin, else Debian's docker-compose).
#   up      points the slot at the release, stops what is left in the
#           slot (a container still finishing its requests is given its
#           grace period), starts the release's containers and writes the
#           web container's host pid into the run folder
#   start   starts the slot's containers as its compose file says
#   stop    stops the slot's containers, each within its grace period,
#           and removes them
#   drain   waits for the requests the web server sent before the
#           switch to be accepted, then stops
#   status  succeeds when the slot's web container runs
#   logs    prints the end of the web container's log
#   run     runs a one-off container of the slot's web service with the
#           remaining arguments: workdir, then variables as NAME=value,
#           then --, then the command
# Arguments: action project slot-link run-folder [release-folder owner |
# run arguments...]
set -e
action=$1 project=$2 link=$3 run=$4
shift 4
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" -f "$link/compose.yml" "$@"
  else
    docker-compose -p "$project" -f "$link/compose.yml" "$@"
  fi
}
web() { compose ps -q web 2>/dev/null | head -n 1; }
stop() {
  if [ -f "$link/compose.yml" ]; then
    compose down --remove-orphans >/dev/null 2>&1 || compose down --remove-orphans
  fi
  rm -f -- "$run/app.sock" "$run/container.pid"
}
case $action in
  up)
    release=$1 owner=$2
    stop
    ln -sfn -- "$release" "$link.djship-new"
    mv -fT -- "$link.djship-new" "$link"
    mkdir -p -- "$run"
    chown -- "$owner" "$run"
    chmod 2770 -- "$run"
    compose up -d --remove-orphans --force-recreate 2>&1 | tail -n 20 >&2
    id=$(web)
    [ -n "$id" ] || { echo "the web container of $project did not start" >&2; exit 1; }
    docker inspect -f '{{.State.Pid}}' "$id" > "$run/container.pid"
    ;;
  start) compose up -d --remove-orphans 2>&1 | tail -n 20 >&2 ;;
  stop) stop ;;
  drain)
    sleep 2
    stop
    ;;
  status)
    id=$(web)
    [ -n "$id" ] && [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ]
    ;;
  logs)
    id=$(web)
    [ -z "$id" ] || docker logs --tail 60 "$id" 2>&1
    ;;
  run)
    workdir=$1
    shift
    # A terminal (manage.py shell) gets one in the container too.
    if [ -t 0 ]; then
      set -- run --rm --no-deps -w "$workdir" "$@"
    else
      set -- run --rm --no-deps -T -w "$workdir" "$@"
    fi
    compose "$@"
    ;;
  *) echo "container-slot: unknown action $action" >&2; exit 2 ;;
esac
