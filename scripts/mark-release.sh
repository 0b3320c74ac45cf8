#!/bin/sh
# Records a release's state (building, complete or failed) in its folder.
# Arguments: release-folder state
printf '%s\n' "$2" > "$1/.djship-state"
