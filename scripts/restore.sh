#!/bin/sh
# Runs a restore command once its snapshot is known to exist (sqlite3
# would restore an empty database from a missing one).
# Arguments: snapshot command...
[ -f "$1" ] || { echo "no snapshot $1" >&2; exit 1; }
shift
exec "$@"
