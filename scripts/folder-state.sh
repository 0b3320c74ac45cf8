#!/bin/sh
# Prints each folder's owner, group and mode and its ACL, after a line
# "=== <path>"; "missing" for one that is not a folder.
# Arguments: folders...
for p; do
  printf '=== %s\n' "$p"
  if [ -d "$p" ]; then stat -c '%U %G %a' -- "$p"; getfacl -cEp -- "$p" 2>/dev/null; else echo missing; fi
done
