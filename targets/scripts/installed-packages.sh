#!/bin/sh
# Prints each of the named Debian packages dpkg knows, with its status.
# Arguments: packages...
dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true
