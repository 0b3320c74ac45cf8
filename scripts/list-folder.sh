#!/bin/sh
# Lists the names in a folder, one a line, nothing when it is missing.
# Arguments: folder
if [ -d "$1" ]; then ls -A1 -- "$1"; fi
