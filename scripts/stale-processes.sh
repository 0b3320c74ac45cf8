#!/bin/sh
# Prints the services of a site's processes that the site no longer has:
# systemd units and init scripts named <prefix><name>, one name a line.
# Arguments: prefix names-to-keep...
prefix=$1
shift
for f in /etc/systemd/system/"$prefix"*.service /etc/init.d/"$prefix"*; do
  [ -f "$f" ] || continue
  unit=${f##*/}
  unit=${unit%.service}
  keep=no
  for name; do
    if [ "$unit" = "$prefix$name" ]; then keep=yes; fi
  done
  if [ "$keep" = no ]; then printf '%s\n' "$unit"; fi
done | sort -u
