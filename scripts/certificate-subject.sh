#!/bin/sh
# Prints the certificate's subject when both it and a non-empty key exist.
# Arguments: certificate key
if [ -s "$2" ]; then openssl x509 -noout -subject -nameopt RFC2253 -in "$1" 2>/dev/null || true; fi
