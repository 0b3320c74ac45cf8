#!/bin/sh
# Starts one instance of Debian's uWSGI init script, or asks whether it
# runs. On a systemd host the init functions would hand either action to
# systemctl for the whole uwsgi service, ignoring the instance (starting
# nothing new, and calling every instance running): the script runs
# unredirected, and a started instance gets a scope unit of its own, so
# that it belongs to neither the SSH session that started it nor a
# service that stops with it. The instance starts with an environment of
# its own, as service(8) would start it: nothing of the caller's reaches
# the application.
# Arguments: start|status instance
set -e
action=$1 inst=$2
SYSTEMCTL_SKIP_REDIRECT=1
export SYSTEMCTL_SKIP_REDIRECT
case $action in
  status) exec /etc/init.d/uwsgi status "$inst" ;;
  start)
    if [ -d /run/systemd/system ]; then
      exec systemd-run --scope --quiet --collect --description="uWSGI instance $inst (djship)" -- \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/uwsgi start "$inst"
    fi
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMCTL_SKIP_REDIRECT=1 /etc/init.d/uwsgi start "$inst" ;;
  *) echo "uwsgi-instance: unknown action $action" >&2; exit 2 ;;
esac
