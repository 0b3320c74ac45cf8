#!/bin/sh
# Stops a process's service and removes it, systemd unit or init script.
# Arguments: unit
unit=$1
if [ -f "/etc/systemd/system/$unit.service" ]; then
  systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
  rm -f -- "/etc/systemd/system/$unit.service"
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ -f "/etc/init.d/$unit" ]; then
  "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null; then update-rc.d -f "$unit" remove >/dev/null 2>&1 || true; fi
  rm -f -- "/etc/init.d/$unit"
fi
