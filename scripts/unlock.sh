#!/bin/sh
# Releases the deploy lock, only when it still holds this run's info.
# Arguments: lock-folder info
if [ "$(cat -- "$1/info" 2>/dev/null)" = "$2" ]; then rm -rf -- "$1"; fi
