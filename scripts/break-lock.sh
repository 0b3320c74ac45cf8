#!/bin/sh
# Breaks the deploy lock whoever holds it: prints the holder's info, then
# "removed"; prints nothing when no lock is held.
# Arguments: lock-folder
if [ -d "$1" ]; then cat -- "$1/info" 2>/dev/null; echo; rm -rf -- "$1"; echo removed; fi
