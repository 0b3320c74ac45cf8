#!/bin/sh
# Says whether the release's folder exists ("exists" or "new"), then
# where current leads.
# Arguments: current release-folder
if [ -e "$2" ] || [ -L "$2" ]; then echo exists; else echo new; fi
readlink -f -- "$1" || true
