#!/bin/sh
# Tests an nginx site, read from standard input, in a copy of nginx's
# configuration folder; errors name the live paths.
# Arguments: project check-command
set -e
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cp -a /etc/nginx/. "$t/"
sed -i "s#/etc/nginx/#$t/#g" "$t/nginx.conf"
rm -f "$t/sites-enabled/$1.conf"
cat > "$t/sites-available/$1.conf"
ln -s "$t/sites-available/$1.conf" "$t/sites-enabled/$1.conf"
if ! out=$("$2" -t -q -c "$t/nginx.conf" 2>&1); then printf '%s\n' "$out" | sed "s#$t/#/etc/nginx/#g" >&2; exit 1; fi
