#!/usr/bin/env bash
# Install or remove the lfr-agent service. Run by `make install-service` / `make
# uninstall-service` as root. DESTDIR stages everything under another root (packaging, tests).
#   install.sh install PREFIX
#   install.sh uninstall PREFIX [WIPE]      WIPE=1 also deletes keys, state, config and user
set -euo pipefail
action=${1:?install or uninstall}; prefix=${2:?PREFIX}; wipe=${3:-0}
here=$(cd "$(dirname "$0")" && pwd); repo=$(dirname "$here")
root=${DESTDIR:-}
unit=$root/etc/systemd/system/lfr-agent.service
sysusers=$root/etc/sysusers.d/lfr-agent.conf
tmpfiles=$root/etc/tmpfiles.d/lfr-agent.conf
live() { [ -z "$root" ] && [ -d /run/systemd/system ]; }  # a running systemd to talk to

if [ "$(id -u)" -ne 0 ]; then echo "install.sh: run as root (sudo make $action-service)" >&2; exit 2; fi

case "$action" in
install)
  mkdir -p "$root$prefix" "$(dirname "$unit")" "$(dirname "$sysusers")" "$(dirname "$tmpfiles")"
  # The code, as a normal (non-editable) install in its own venv, with the models and docs.
  # --system-site-packages: picamera2 and libcamera come from apt (python3-picamera2), never
  # from PyPI; without it the service cannot open the default camera (issue 18).
  # NODE_PYTHON: the interpreter, e.g. python3.11 on a Jetson (JetPack 6 ships 3.10).
  "${NODE_PYTHON:-python3}" -m venv --system-site-packages "$root$prefix/.venv"
  "$root$prefix/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$root$prefix/.venv/bin/python" -m pip install --quiet "$repo"
  # systemd-python needs libsystemd-dev and pkg-config; without it the agent speaks the
  # sd_notify protocol itself, so it is optional.
  if [ -n "${WITH_SYSTEMD_PYTHON:-}" ]; then
    "$root$prefix/.venv/bin/python" -m pip install --quiet "$repo[systemd]"
  fi
  mkdir -p "$root$prefix/models" "$root$prefix/docs"
  cp "$repo"/models/MANIFEST.json "$repo"/models/*.tflite "$root$prefix/models/"
  cp "$repo"/docs/*.md "$root$prefix/docs/"
  sed "s|@PREFIX@|$prefix|g" "$here/lfr-agent.service" > "$unit"
  install -m 0644 "$here/lfr-agent.sysusers" "$sysusers"
  install -m 0644 "$here/lfr-agent.tmpfiles" "$tmpfiles"
  systemd-sysusers ${root:+--root="$root"} "$sysusers"
  systemd-tmpfiles --create ${root:+--root="$root"} "$tmpfiles"
  if live; then systemctl daemon-reload; fi
  cat <<MSG
lfr-agent installed in $prefix. Next, on this node:
  $prefix/.venv/bin/lfr-provision device-init --id ID --site SITE --state /var/lib/lfr-agent
  (ops approve the request) then
  $prefix/.venv/bin/lfr-provision device-install BUNDLE --state /var/lib/lfr-agent --config /etc/lfr-agent/agent.toml
  chown -R lfr-agent:lfr-agent /var/lib/lfr-agent && chgrp lfr-agent /etc/lfr-agent/agent.toml
  $prefix/.venv/bin/lfr-agent check --config /etc/lfr-agent/agent.toml
  systemctl enable --now lfr-agent
MSG
  ;;
uninstall)
  if live; then systemctl disable --now lfr-agent 2>/dev/null || true; fi
  rm -f "$unit" "$sysusers" "$tmpfiles"
  rm -rf "$root$prefix"
  if [ "$wipe" = "1" ]; then
    # Keys, watchlist, outbox and config: gone. Without WIPE=1 they stay for a reinstall.
    rm -rf "$root/var/lib/lfr-agent" "$root/etc/lfr-agent"
    if [ -z "$root" ]; then userdel lfr-agent 2>/dev/null || true; fi
  fi
  if live; then systemctl daemon-reload; fi
  echo "lfr-agent removed${wipe:+ (WIPE=$wipe)}"
  ;;
*) echo "install.sh: unknown action $action" >&2; exit 2 ;;
esac
