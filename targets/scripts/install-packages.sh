#!/bin/sh
# Installs Debian packages without recommends, keeping configuration
# files the administrator changed; apt-get update runs only when the
# package lists are more than a day old.
# Arguments: packages...
set -e
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  apt-get update -q
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "$@"
