#!/bin/sh
# Verifies a systemd unit read from standard input. Before the first
# release its program does not exist yet, so systemd's complaint about
# that is expected then.
# Arguments: unit-file-name
set -e
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/$1"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$t/$1" 2>&1 || true)
out=$(printf '%s\n' "$out" | grep -F "$1" | grep -v 'is not executable' || true)
if [ -n "$out" ]; then printf '%s\n' "$out" >&2; exit 1; fi
