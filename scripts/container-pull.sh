#!/bin/sh
# Pulls a release's image and copies its static files out of it into the
# release folder, where the web server serves them; records the image in
# the release folder's image file (reference and digest). With a user
# name, it first logs in to the registry with the password on standard
# input, in a Docker configuration folder of its own that it removes at
# the end: no credential stays on the host.
# Arguments: registry user image release-folder static-path-in-image
set -e
registry=$1 user=$2 image=$3 release=$4 static=$5
DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
trap 'rm -rf -- "$DOCKER_CONFIG"' EXIT
if [ -n "$user" ]; then
  docker login --username "$user" --password-stdin "$registry" >/dev/null
fi
docker pull -q "$image" >/dev/null
id=$(docker create "$image")
mkdir -p -- "$release/static"
if ! docker cp "$id:$static/." "$release/static/"; then
  docker rm "$id" >/dev/null
  exit 1
fi
docker rm "$id" >/dev/null
digest=$(docker image inspect -f '{{index .RepoDigests 0}}' "$image")
printf '%s\n' "$digest" > "$release/image"
echo "$digest"
