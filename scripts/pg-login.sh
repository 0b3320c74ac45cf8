#!/bin/sh
# Prints "ok" when the password opens the PostgreSQL role. Runs under
# with-pgpassword.sh.
# Arguments: port user
if psql -X -qAt -w -h localhost -p "$1" -U "$2" -d postgres -c 'SELECT 1' >/dev/null 2>&1; then echo ok; fi
