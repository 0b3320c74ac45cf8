#!/bin/sh
# Lists the folders of releases/, one a line: the time of its state file
# (0 when none), its state (unknown when none) and its name.
# Arguments: releases-folder
cd "$1" || exit 1
for r in */; do
  r=${r%/}
  [ -d "$r" ] || continue
  printf '%s %s %s\n' "$(stat -c %Y "$r/.djship-state" 2>/dev/null || echo 0)" "$(cat "$r/.djship-state" 2>/dev/null || echo unknown)" "$r"
done
