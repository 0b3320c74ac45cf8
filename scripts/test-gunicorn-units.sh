#!/bin/sh
# Verifies gunicorn's systemd socket and service units, read from
# standard input with a split line between them. Before the first
# release the virtualenv does not exist yet, so systemd's complaint about
# ExecStart is expected then.
# Arguments: unit-name
set -e
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/all"
sed '/^#--djship-split--$/,$d' "$t/all" > "$t/$1.socket"
sed '1,/^#--djship-split--$/d' "$t/all" > "$t/$1.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$t/$1.socket" "$t/$1.service" 2>&1 || true)
out=$(printf '%s\n' "$out" | grep -F "$1" | grep -v 'is not executable' || true)
if [ -n "$out" ]; then printf '%s\n' "$out" >&2; exit 1; fi
