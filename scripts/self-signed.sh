#!/bin/sh
# Generates a self-signed certificate and its key for a name, the key
# readable by root and the web server's group alone; both replace the old
# pair only once both are written.
# Arguments: certificate key name web-group
set -e
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$3" -addext "subjectAltName=DNS:$3" -keyout "$2.djship-new" -out "$1.djship-new" 2>/dev/null
chown root:"$4" "$2.djship-new" && chmod 0640 "$2.djship-new"
chmod 0644 "$1.djship-new"
mv -f "$2.djship-new" "$2" && mv -f "$1.djship-new" "$1"
