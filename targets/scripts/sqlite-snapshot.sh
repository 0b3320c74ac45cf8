#!/bin/sh
# Snapshots a sqlite database with its online backup; prints "saved", or
# nothing when the database does not exist yet.
# Arguments: database file
set -e
if [ -f "$1" ]; then
  sqlite3 "$1" ".backup '$2'"
  chmod 0600 "$2"
  echo saved
fi
