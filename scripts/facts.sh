#!/bin/sh
# Prints what the host is like, as key=value lines: its init system,
# whether a release is live (its virtualenv answers, or in container
# mode its folder names its image), and where current
# and app.sock lead.
# Arguments: current app-socket
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
if [ -x "$1/venv/bin/python" ] || [ -f "$1/image" ]; then echo live=yes; fi
echo "current=$(readlink -- "$1")"
echo "socket=$(readlink -- "$2")"
