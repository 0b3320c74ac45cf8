#!/bin/sh
# Removes releases with their database snapshots.
# Arguments: base releases...
cd "$1" || exit 1
shift
for r in "$@"; do rm -rf -- "releases/$r" "snapshots/$r.sqlite3" "snapshots/$r.dump"; done
