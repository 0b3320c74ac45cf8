#!/bin/sh
# Snapshots a PostgreSQL database before a rollback restores another
# snapshot, once that snapshot is known to exist. Runs under
# with-pgpassword.sh.
# Arguments: database from keep connection-options...
db=$1 from=$2 keep=$3
shift 3
[ -f "$from" ] || { echo "no snapshot $from" >&2; exit 1; }
pg_dump -Fc --no-password "$@" -f "$keep" "$db"
