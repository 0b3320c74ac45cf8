#!/bin/sh
# Runs a script with the PostgreSQL password, read from standard input,
# in PGPASSWORD: never in argv. Files it writes are root's alone.
# Arguments: script name arguments...
set -e
umask 077
IFS= read -r PGPASSWORD || true
export PGPASSWORD
script=$1
shift
exec sh -c "$script" "$@"
