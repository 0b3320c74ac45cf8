#!/bin/sh
# Prints the last lines of a site's logs, or, with follow yes, goes on
# printing what they get, as tail -F does, until it is stopped. An entry
# dir:<folder> stands for the *.log files of that folder, unit:<name> for
# a systemd unit's journal, docker:<project> for the logs of the running
# containers labelled io.djship.project=<project>; a file that does not
# exist yet is left out.
# Arguments: follow lines entries...
follow=$1 lines=$2 found=
shift 2
n=$#
for e; do
  case $e in
    unit:*)
      if command -v journalctl >/dev/null 2>&1; then
        if [ "$follow" = yes ]; then
          journalctl --no-pager -n "$lines" -f -u "${e#unit:}" &
        else
          journalctl --no-pager -n "$lines" -u "${e#unit:}"
        fi
      fi
      ;;
    docker:*)
      for id in $(docker ps -q --filter "label=io.djship.project=${e#docker:}" 2>/dev/null); do
        found=yes
        name=$(docker inspect -f '{{.Name}}' "$id")
        if [ "$follow" = yes ]; then
          docker logs -n "$lines" -f "$id" 2>&1 | sed "s|^|${name#/}: |" &
        else
          docker logs -n "$lines" "$id" 2>&1 | sed "s|^|${name#/}: |"
        fi
      done
      ;;
    dir:*)
      for f in "${e#dir:}"/*.log; do
        if [ -f "$f" ]; then set -- "$@" "$f"; fi
      done
      ;;
    *)
      if [ -f "$e" ]; then set -- "$@" "$e"; fi
      ;;
  esac
done
shift "$n"
if [ $# -eq 0 ]; then
  [ -n "$found" ] || echo "no log file yet"
  wait
  exit 0
fi
if [ "$follow" = yes ]; then
  exec tail -n "$lines" -F -- "$@"
fi
exec tail -n "$lines" -- "$@"
