#!/bin/sh
# Snapshots a sqlite database with its online backup; prints "saved", or
# nothing when the database does not exist yet. While visitors write, the
# backup waits for their locks (up to 30 s in all) instead of failing:
# each write holds the lock for milliseconds, and the backup reads between
# them.
# Arguments: database file
set -e
if [ -f "$1" ]; then
  sqlite3 -cmd ".timeout 30000" "$1" ".backup '$2'"
  chmod 0600 "$2"
  echo saved
fi
