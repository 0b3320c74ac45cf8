#!/bin/sh
# Runs as root, reading only: every link of src leads inside it (resolved
# by realpath as the kernel would, missing parts taken as folders), every
# hard link's names are all inside, nothing is special. With any-links,
# links may lead anywhere (a virtualenv's python leads to the system's):
# root never follows them.
# Arguments: src scratch-file [any-links]
set -eu
src=$1 tmp=$2 links=${3:-inside}
# shellcheck disable=SC2016 # the inner program expands its own arguments
[ "$links" = any-links ] || find "$src" -type l -exec sh -c '
  src=$1 tmp=$2
  shift 2
  realpath -m -z --relative-base="$src" -- "$@" > "$tmp"
  if grep -qz "^/" "$tmp"; then
    echo "a link of the release leads out of it, to $(grep -z "^/" "$tmp" | tr "\0" "\n" | head -n 1): refused" >&2
    exit 1
  fi' check "$src" "$tmp" {} +
outside=$(find "$src" -type f -links +1 -printf '%i %n\n' | sort | uniq -c | awk '$1 != $3 { print $2 }' | head -n 1)
if [ -n "$outside" ]; then
  echo "a file of the release has hard links outside it (inode $outside): refused" >&2
  exit 1
fi
special=$(find "$src" ! -type f ! -type d ! -type l -print -quit)
if [ -n "$special" ]; then
  echo "$special is a special file: refused" >&2
  exit 1
fi
