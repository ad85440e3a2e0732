#!/usr/bin/env bash
# The Jetson's Python path, checked in an Ubuntu 22.04 (JetPack 6's base) root on this host:
# python3.11 and python3.11-venv from jammy's universe, the agent in a --system-site-packages
# venv, the camera/capture/loop-stage unit tests on that interpreter, and `lfr-agent check`
# reading a frame through Ubuntu's GStreamer (gst:videotestsrc). Native architecture only (the
# arm64 side of the node is tools/arm64). Run as root: sudo tools/jammy/test.sh
#   ROOT=/var/tmp/lfr-jammy  MIRROR=http://archive.ubuntu.com/ubuntu
# Without Ubuntu's archive keyring (Debian does not ship it) debootstrap and apt run
# unverified: a throwaway test root, never a node.
set -euo pipefail
ROOT=${ROOT:-/var/tmp/lfr-jammy}
MIRROR=${MIRROR:-http://archive.ubuntu.com/ubuntu}
HOST_PY=${HOST_PY:-.venv/bin/python}
KEYRING=/usr/share/keyrings/ubuntu-archive-keyring.gpg
say() { echo "jammy: $*"; }
[ "$(id -u)" -eq 0 ] || { echo "tools/jammy/test.sh: run as root" >&2; exit 2; }
cd "$(dirname "$0")/../.."
if [ -f "$KEYRING" ]; then verify=(--keyring="$KEYRING"); insecure=(); else
  verify=(--no-check-gpg); insecure=(-o Acquire::AllowInsecureRepositories=true --allow-unauthenticated)
  say "no $KEYRING: packages are not signature-checked (test root only)"
fi
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  t0=$SECONDS
  debootstrap "${verify[@]}" --variant=minbase --components=main,universe jammy "$ROOT" "$MIRROR" >/dev/null
  printf 'deb %s jammy main universe\ndeb %s jammy-updates main universe\ndeb %s jammy-security main universe\n' \
    "$MIRROR" "$MIRROR" "$MIRROR" >"$ROOT/etc/apt/sources.list"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get "${insecure[@]:0:2}" update -qq
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${insecure[@]:2}" python3.11 python3.11-venv gstreamer1.0-tools gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good >/dev/null
  say "root with python3.11 in $((SECONDS - t0)) s"
fi
# Wheels for cp311 x86-64 fetched by the host's pip; the root installs them offline.
rm -rf "$ROOT/opt/wheels" "$ROOT/src" && mkdir -p "$ROOT/opt/wheels" "$ROOT/src"
"$HOST_PY" -m pip wheel -q --no-deps -w "$ROOT/opt/wheels" .
platforms=()
for p in manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 \
  manylinux_2_17_x86_64 manylinux2014_x86_64; do platforms+=(--platform "$p"); done
"$HOST_PY" -m pip download -q -d "$ROOT/opt/wheels" --only-binary=:all: --python-version 3.11 \
  --implementation cp --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
  "$ROOT"/opt/wheels/lfr_edge-*.whl pytest hypothesis 2>/dev/null
chroot "$ROOT" python3.11 -m venv --system-site-packages /opt/lfr-edge/.venv
chroot "$ROOT" /opt/lfr-edge/.venv/bin/python -m pip install -q --no-index --find-links /opt/wheels \
  lfr-edge pytest hypothesis
tar --exclude=__pycache__ -cf - agent protocol lfrkit provisioning central tools tests pyproject.toml \
  | tar -xf - -C "$ROOT/src"
mount -t proc proc "$ROOT/proc"  # setpriv (the gst: source) reads /proc
trap 'umount "$ROOT/proc"' EXIT
say "$(chroot "$ROOT" /opt/lfr-edge/.venv/bin/python -c 'import sys; print("Python", sys.version.split()[0])'), $(chroot "$ROOT" gst-launch-1.0 --version | sed -n 2p)"
chroot "$ROOT" /bin/bash -c 'cd /src && /opt/lfr-edge/.venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/unit/test_camera_sources.py tests/unit/test_gst_source.py tests/unit/test_agent_edges.py \
  tests/unit/test_agent_stages.py' | tail -1
chroot "$ROOT" /bin/bash -c 'rm -rf /srv/fleet && cd / &&
  /opt/lfr-edge/.venv/bin/lfr-provision quickstart --dir /srv/fleet --devices 1 >/dev/null &&
  /opt/lfr-edge/.venv/bin/lfr-agent check --offline --config /srv/fleet/devices/cam-01/agent.toml \
    --source "gst:videotestsrc ! video/x-raw,width=1920,height=1080"' | grep -E "^camera|^check"
say "passed"
