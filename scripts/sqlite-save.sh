#!/bin/sh
# Snapshots a sqlite database before a rollback restores another
# snapshot, once that snapshot is known to exist; it waits for the
# writers' locks as sqlite-snapshot.sh does.
# Arguments: database from keep
set -e
[ -f "$2" ] || { echo "no snapshot $2" >&2; exit 1; }
sqlite3 -cmd ".timeout 30000" "$1" ".backup '$3'"
chmod 0600 "$3"
