#!/bin/sh
# Tests an Apache site, read from standard input, in a copy of Apache's
# configuration folder with the site's modules enabled.
# Arguments: project check-command modules...
set -e
name=$1 check=$2; shift 2
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cp -a /etc/apache2/. "$t/"
cat > "$t/sites-available/$name.conf"
ln -sfn "../sites-available/$name.conf" "$t/sites-enabled/$name.conf"
for m in "$@"; do for ext in load conf; do
  if [ -f "$t/mods-available/$m.$ext" ]; then ln -sfn "../mods-available/$m.$ext" "$t/mods-enabled/$m.$ext"; fi
done; done
if ! out=$(APACHE_CONFDIR="$t" "$check" configtest 2>&1); then printf '%s\n' "$out" >&2; exit 1; fi
