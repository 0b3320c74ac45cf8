#!/bin/sh
# Runs as the unpacking user: unpacks one archive into an empty folder,
# then moves its content into the folder it is unpacked to, entry by
# entry, never through a link.
# Arguments: src stage archive into name
set -eu
src=$1 stage=$2 archive=$3 into=$4 name=$5
dest=$(realpath -m -- "$into")
case $dest in
  "$src"|"$src"/*) ;;
  *) echo "$name: its folder leads out of the release, to $dest" >&2; exit 1 ;;
esac
cur=$src
set -f
IFS=/
for c in ${dest#"$src"}; do
  [ -n "$c" ] || continue
  cur=$cur/$c
  if [ -L "$cur" ]; then echo "$name: $cur is a link" >&2; exit 1; fi
  [ -d "$cur" ] || mkdir -- "$cur"
done
unset IFS
set +f
w=$(mktemp -d "$stage/archive.XXXXXX")
case $archive in
  *.zip) unzip -q "$archive" -d "$w" ;;
  *) tar -x --no-same-owner --no-same-permissions -f "$archive" -C "$w" ;;
esac
cd "$w"
# find lists a folder before what it holds, so each name's folders are
# checked (or made) before it is moved; after one refusal no later batch
# moves anything.
# shellcheck disable=SC2016 # the inner program expands its own arguments
find . -mindepth 1 -exec sh -c '
  dest=$1 mark=$2 name=$3
  shift 3
  [ ! -e "$mark" ] || exit 1
  for p; do
    d=$dest/${p#./}
    if [ -d "$p" ] && [ ! -L "$p" ]; then
      if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then
        : > "$mark"; echo "$name: ${p#./} would go through $d, which is not a folder" >&2; exit 1
      fi
      [ -d "$d" ] || mkdir -- "$d"
    else
      if [ -L "$d" ] || [ -d "$d" ] || { [ -L "$p" ] && [ -e "$d" ]; }; then
        : > "$mark"; echo "$name: ${p#./} would replace $d" >&2; exit 1
      fi
      mv -f -T -- "$p" "$d"
    fi
  done' merge "$dest" "$w.refused" "$name" {} +
cd /
rm -rf -- "$w"
