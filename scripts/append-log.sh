#!/bin/sh
# Appends one line to the deploy log.
# Arguments: log line
printf '%s\n' "$2" >> "$1" && chmod 0640 "$1"
