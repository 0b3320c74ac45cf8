#!/bin/sh
# Prints a file's mode, owner and group, then its content; "missing" when
# it is not a file.
# Arguments: file
f=$1
if [ -f "$f" ]; then stat -c '%a %U %G' -- "$f"; cat -- "$f"; else echo missing; fi
