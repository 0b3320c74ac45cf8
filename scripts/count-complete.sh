#!/bin/sh
# Counts the complete releases.
# Arguments: releases-folder
n=0
for r in "$1"/*/; do
  [ "$(cat "$r.djship-state" 2>/dev/null)" = complete ] && n=$((n+1))
done
echo $n
