#!/bin/sh
# Prints the end of a log: from its last Python traceback (request lines
# left out, 20 lines at most), or its last 15 lines when it has none.
# Arguments: log
t=$(tail -n 400 -- "$1" 2>/dev/null) || exit 0
n=$(printf '%s\n' "$t" | grep -n 'Traceback (most recent call last)' | tail -n 1 | cut -d: -f1)
if [ -n "$n" ]; then printf '%s\n' "$t" | tail -n +"$n" | grep -v '^\[pid' | head -n 20; else printf '%s\n' "$t" | tail -n 15; fi
