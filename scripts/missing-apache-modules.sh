#!/bin/sh
# Prints the Apache modules that are not enabled, one a line.
# Arguments: modules...
for m in "$@"; do [ -e "/etc/apache2/mods-enabled/$m.load" ] || echo "$m"; done
