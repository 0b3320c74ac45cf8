#!/bin/sh
# Snapshots a PostgreSQL database with pg_dump -Fc into a file written
# whole or not at all. Runs under with-pgpassword.sh.
# Arguments: database file connection-options...
set -e
db=$1 file=$2
shift 2
pg_dump -Fc --no-password "$@" -f "$file.partial" "$db"
mv -f "$file.partial" "$file"
