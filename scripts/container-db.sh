#!/bin/sh
# Starts the site's PostgreSQL server as a compose service of its own
# (compose.database) unless it runs, and waits until it takes
# connections on 127.0.0.1 at its port; prints "started" when it started
# it.
# Arguments: project compose-file port
set -e
project=$1 file=$2 port=$3
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" -f "$file" "$@"
  else
    docker-compose -p "$project" -f "$file" "$@"
  fi
}
id=$(compose ps -q postgres 2>/dev/null | head -n 1)
if [ -z "$id" ] || [ "$(docker inspect -f '{{.State.Running}}' "$id")" != true ]; then
  compose up -d 2>&1 | tail -n 20 >&2
  echo started
else
  compose up -d 2>&1 | tail -n 20 >&2
fi
i=0
until pg_isready -q -h 127.0.0.1 -p "$port"; do
  i=$((i + 1))
  if [ "$i" -gt 300 ]; then
    echo "the PostgreSQL container of $project does not take connections on 127.0.0.1:$port after 60 s; its log:" >&2
    id=$(compose ps -q postgres | head -n 1)
    [ -z "$id" ] || docker logs --tail 30 "$id" >&2
    exit 1
  fi
  sleep 0.2
done
