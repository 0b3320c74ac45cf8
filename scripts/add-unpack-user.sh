#!/bin/sh
# Creates the system user that unpacks releases, in its own group (or the
# group of that name when one exists); it owns nothing but the empty
# folders it unpacks into.
# Arguments: user
set -e
if getent group "$1" >/dev/null; then
  useradd --system --gid "$1" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -- "$1"
else
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -- "$1"
fi
