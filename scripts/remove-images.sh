#!/bin/sh
# Removes the images of releases that are about to be pruned, as their
# image files name them, unless a release that stays names the same
# image; an image a container still uses stays too.
# Arguments: releases-folder releases...
releases=$1
shift
for r in "$@"; do
  [ -f "$releases/$r/image" ] || continue
  ref=$(cat "$releases/$r/image")
  users=$(grep -lxF -- "$ref" "$releases"/*/image 2>/dev/null | wc -l)
  others=0
  for o in "$@"; do
    if [ -f "$releases/$o/image" ] && [ "$(cat "$releases/$o/image")" = "$ref" ]; then others=$((others + 1)); fi
  done
  if [ "$users" -le "$others" ]; then
    docker image rm "$ref" >/dev/null 2>&1 || true
  fi
done
