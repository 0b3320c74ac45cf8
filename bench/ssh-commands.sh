#!/usr/bin/env bash
# 100 small commands: one djship connection against 100 OpenSSH client
# invocations, on the same real sshd (needs root, openssh-server and
# openssh-client). Prints milliseconds for each and the speedup.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench HundredCommands -benchtime "${1:-5}x" ./remote
