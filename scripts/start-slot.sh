#!/bin/sh
# Stops what may be left in a uWSGI slot (a run that died, or an old
# instance still finishing its requests: waited for up to a minute),
# points the slot at the release and starts its instance.
# Arguments: instance slot-link release-folder available enabled
# stop-script start-script
set -e
inst=$1 link=$2 release=$3 available=$4 enabled=$5 stop=$6 start=$7
sh -c "$stop" stop "$inst" "$enabled" yes 600
ln -sfn -- "$release" "$link.djship-new"
mv -fT -- "$link.djship-new" "$link"
ln -sfn -- "../apps-available/${available##*/}" "$enabled"
sh -c "$start" start start "$inst" >/dev/null
