#!/bin/sh
# Installs Debian packages, with or without what Debian recommends for
# them, keeping configuration files the administrator changed; apt-get
# update runs only when the package lists are more than a day old.
# Arguments: recommends|no-recommends packages...
set -e
case $1 in
  recommends) recommends=--install-recommends ;;
  no-recommends) recommends=--no-install-recommends ;;
  *) echo "install-packages: the first argument is recommends or no-recommends, not $1" >&2; exit 2 ;;
esac
shift
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  apt-get update -q
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$recommends" -o Dpkg::Options::=--force-confold "$@"
