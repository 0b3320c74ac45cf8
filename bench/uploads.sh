#!/usr/bin/env bash
# One upload (4 KiB, as root through sudo, owner and mode set) to a fresh
# Debian machine with systemd as PID 1 and to an sshd on this machine,
# side by side in one run (needs root, openssh-server, systemd-container,
# debootstrap). Prints milliseconds per upload on each and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench UploadToSystemdHost -benchtime "${1:-5}x" ./remote
