#!/bin/sh
# Prints which of the site's accounts exist: "group", "user" and
# "unpacker", one a line.
# Arguments: app-user app-group unpack-user
getent group "$2" >/dev/null && echo group
id -u "$1" >/dev/null 2>&1 && echo user
id -u "$3" >/dev/null 2>&1 && echo unpacker
true
