#!/bin/sh
# Lets the application hosts reach the site's PostgreSQL database over
# TCP: PostgreSQL listens on every address (a conf.d file), and a block
# of pg_hba.conf, marked with the instance, lets the site's role log in
# to the site's database from each host's address with its password
# (scram-sha-256), over TLS only when the type is hostssl. Prints
# "restart" when the listening addresses changed, "reload" when only
# pg_hba.conf did, nothing when neither did.
# Arguments: instance database role host|hostssl address...
set -eu
instance=$1 db=$2 role=$3 type=$4
shift 4
cluster=$(pg_lsclusters -h | awk 'NR == 1 { print "/etc/postgresql/" $1 "/" $2 }')
[ -n "$cluster" ] || { echo "no PostgreSQL cluster on this host (pg_lsclusters lists none)" >&2; exit 1; }
action=
listen="$cluster/conf.d/djship-listen.conf"
want="# Managed by djship: PostgreSQL listens on every address; pg_hba.conf says who may log in.
listen_addresses = '*'"
if [ "$(cat "$listen" 2>/dev/null)" != "$want" ]; then
	printf '%s\n' "$want" > "$listen.djship-new"
	chown postgres:postgres "$listen.djship-new"
	mv -f "$listen.djship-new" "$listen"
	action=restart
fi
hba="$cluster/pg_hba.conf"
begin="# djship $instance: the application hosts"
end="# djship $instance end"
block=$(
	printf '%s\n' "$begin"
	for a in "$@"; do printf '%s %s %s %s scram-sha-256\n' "$type" "$db" "$role" "$a"; done
	printf '%s' "$end"
)
current=$(awk -v b="$begin" -v e="$end" '$0 == b { on = 1 } on { print } $0 == e { on = 0 }' "$hba")
if [ "$current" != "$block" ]; then
	awk -v b="$begin" -v e="$end" '$0 == b { on = 1 } !on { print } $0 == e { on = 0 }' "$hba" > "$hba.djship-new"
	printf '%s\n' "$block" >> "$hba.djship-new"
	chown --reference="$hba" "$hba.djship-new"
	chmod --reference="$hba" "$hba.djship-new"
	mv -f "$hba.djship-new" "$hba"
	[ -n "$action" ] || action=reload
fi
echo "$action"
