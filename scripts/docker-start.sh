#!/bin/sh
# Starts the Docker daemon and waits until it answers (at most 30 s).
# Arguments: init ("systemd" or anything else)
# With systemd the service is also enabled at boot. Elsewhere it goes
# through Debian's init script; that script first raises the open-files
# limit to 1048576, which a host without CAP_SYS_RESOURCE (a container,
# a restricted VM) refuses, and then it exits before starting anything.
# In that case dockerd is started the way the init script starts it
# (same pid files, log file and DOCKER_OPTS), with the limits the host
# allows, and a line on standard output says so.
set -e
if [ "$1" = systemd ]; then
	systemctl enable --now docker.service
elif ! out=$(service docker start 2>&1); then
	if ! docker info >/dev/null 2>&1; then
		DOCKER_OPTS=
		# shellcheck disable=SC1091
		if [ -f /etc/default/docker ]; then . /etc/default/docker; fi
		touch /var/log/docker.log
		# DOCKER_OPTS is a list of words, as the init script reads it.
		# shellcheck disable=SC2086
		start-stop-daemon --start --background --no-close \
			--exec /usr/sbin/dockerd \
			--pidfile /var/run/docker-ssd.pid --make-pidfile \
			-- -p /var/run/docker.pid $DOCKER_OPTS >>/var/log/docker.log 2>&1
		echo "service docker start failed ($(printf '%s\n' "$out" | tail -n 1)); started dockerd directly, with this host's limits"
	fi
fi
i=0
until docker info >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 150 ]; then
		echo "the Docker daemon does not answer 30 s after it was started; see /var/log/docker.log or journalctl -u docker" >&2
		exit 1
	fi
	sleep 0.2
done
