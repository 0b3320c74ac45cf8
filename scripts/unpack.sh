#!/bin/sh
# Unpacks a release as root's delegate: the build user owns nothing but
# the empty src/ and a scratch folder, and unpacks the tarball, then each
# archive alone into an empty folder (deflate-archive.sh); after each,
# check-release.sh checks every link and hard link of src/. src/ stays
# the build user's, who may enter the release folder, until the
# virtualenv step has built what it needs and take-over.sh hands
# everything to root.
# Arguments: release tarball tar-flag user source-folder deflate-script
# check-script, then archive and into for each archive to unpack.
set -eu
r=$1 tarball=$2 flag=$3 user=$4 folder=$5 deflate=$6 check=$7
shift 7
if ! id -u "$user" >/dev/null 2>&1; then
  echo "the user $user, who unpacks releases, is missing: run mage provision for this environment first" >&2
  exit 1
fi
stage=$r/.unpack
rm -rf -- "$r/src" "$stage" "$r/.check"
mkdir -- "$r/src" "$stage"
chown -- "$user:" "$r/src" "$stage"
chmod 0700 "$stage"
trap 'rm -rf -- "$stage" "$r/.check"' EXIT
setfacl -m "u:$user:--x" -- "$r"
src=$(realpath -e -- "$r/src")
as() { runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as tar "$flag" -x --no-same-owner --no-same-permissions -f - -C "$src" < "$tarball"
sh -c "$check" check "$src" "$r/.check"
while [ $# -ge 2 ]; do
  as sh -c "$deflate" deflate "$src" "$stage" "$src/$folder/$1" "$src/$folder/$2" "$1"
  shift 2
  sh -c "$check" check "$src" "$r/.check"
done
