#!/bin/sh
# Prints "legacy" when the host has the single uWSGI instance of earlier
# djship versions: its configuration or its pid file.
# Arguments: enabled available instance
if [ -e "$1" ] || [ -e "$2" ] || [ -e "/run/uwsgi/app/$3/pid" ]; then echo legacy; fi
