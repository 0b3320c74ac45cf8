#!/bin/sh
# Enables an init script at boot where update-rc.d exists.
# Arguments: name
if command -v update-rc.d >/dev/null; then update-rc.d "$1" defaults >/dev/null; fi
