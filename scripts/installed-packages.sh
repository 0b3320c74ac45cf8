#!/bin/sh
# Prints each of the named Debian packages dpkg knows, with its status
# and what it recommends.
# Arguments: packages...
dpkg-query -W -f='${Package} ${db:Status-Status} ${Recommends}\n' "$@" 2>/dev/null || true
