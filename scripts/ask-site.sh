#!/bin/sh
# Requests the site's health address through the local web server and
# prints key=value lines: status, the revision header, whether the body
# holds the revision, and an excerpt; or curl= with curl's error.
# Arguments: url resolve timeout header revision
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
code=$(curl -sS -k --max-time "$3" --resolve "$2" -D "$t/h" -o "$t/b" -w '%{http_code}' "$1" 2>"$t/e") || { echo "curl=$(head -c 300 "$t/e")"; exit 0; }
echo "status=$code"
echo "header=$(grep -i "^$4:" "$t/h" | head -n 1 | cut -d: -f2- | tr -d ' \r')"
if [ -n "$5" ] && grep -qF -- "$5" "$t/b"; then echo "body=yes"; else echo "body=no"; fi
echo "excerpt=$(head -c 400 "$t/b" | tr '\n\r' '  ')"
