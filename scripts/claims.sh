#!/bin/sh
# Says which of the files djship is about to write were written by djship
# for another site: for each such file, a line "<file><TAB><its Managed
# by line>". A file of this site (its Managed by line names this site's
# claim, or, as earlier versions wrote it, its instance alone), a file
# djship did not write, and a missing file print nothing.
# Arguments: claim legacy-claim files...
claim=$1 legacy=$2
shift 2
for f; do
  [ -f "$f" ] || continue
  line=$(grep -m 1 '^# Managed by djship' -- "$f" 2>/dev/null) || continue
  case $line in
    *"$claim"*|*"$legacy"*) ;;
    *) printf '%s\t%s\n' "$f" "$line" ;;
  esac
done
