#!/bin/sh
# Restores a pg_dump snapshot into the site's database in one
# transaction. pg_restore --clean drops only what the snapshot holds, so
# a table that a later migration made would stay behind (and the next
# migrate would fail on it: "relation already exists"); so first every
# table, view and sequence the site's role owns outside PostgreSQL's own
# schemas is dropped, then the snapshot's SQL runs. COMMIT is sent only
# once pg_restore has read the whole snapshot: a snapshot that cannot be
# read leaves the database as it was. Runs under with-pgpassword.sh.
# Arguments: snapshot database connection-options...
set -eu
snapshot=$1 db=$2
shift 2
[ -f "$snapshot" ] || { echo "no snapshot $snapshot" >&2; exit 1; }
failed=$(mktemp)
trap 'rm -f -- "$failed"' EXIT
{
	echo 'BEGIN;'
	echo 'SET client_min_messages = warning;'
	cat <<'SQL'
DO $djship$
DECLARE
  item record;
BEGIN
  FOR item IN
    SELECT format('%I.%I', n.nspname, c.relname) AS name,
           CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
             WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'i', 'a'))
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE', item.kind, item.name);
  END LOOP;
END
$djship$;
SQL
	if pg_restore --clean --if-exists --no-owner -f - "$snapshot"; then
		echo 'COMMIT;'
	else
		echo failed >"$failed"
	fi
} | psql -X -q -v ON_ERROR_STOP=1 --no-password "$@" -d "$db" >/dev/null
if [ -s "$failed" ]; then
	echo "pg_restore could not read $snapshot: the database is as it was" >&2
	exit 1
fi
