#!/bin/sh
# Tries once to take the deploy lock: mkdir is atomic, so of two runs only
# one gets it. The first line of output is "taken", "held" (then the
# holder's info), or "failed <why>" (then mkdir's or the shell's own
# message).
# Arguments: lock-folder info
lock=$1 info=$2
if err=$(mkdir -m 0700 -- "$lock" 2>&1); then
  if err=$( { printf '%s\n' "$info" > "$lock/info"; } 2>&1 ); then echo taken; exit 0; fi
  rm -f -- "$lock/info"; rmdir -- "$lock" 2>/dev/null
  printf 'failed info\n%s\n' "$err"; exit 0
fi
if [ -d "$lock" ]; then echo held; cat -- "$lock/info" 2>/dev/null; exit 0; fi
base=$(dirname -- "$lock")
if [ ! -e "$base" ]; then why=missing
elif [ ! -d "$base" ]; then why=notdir
elif [ -e "$lock" ] || [ -L "$lock" ]; then why=notlock
else why="mkdir"; fi
printf 'failed %s\n%s\n' "$why" "$err"
