#!/usr/bin/env bash
# make test-arm64: the node's code on arm64 (Debian 12 root under qemu-user, see root.sh),
# installed as a node gets it: the arm64 .deb (make deb, tools/deb) with `apt install
# ./lfr-edge_*.deb`. Then inside the root, as the technician would: `lfr-agent --help`,
# `lfr-agent check --offline` as the lfr-agent user, the models' hash check and each profile's
# embeddings of FACES LFW faces compared with this machine's (x86) on the same faces (fails
# below MIN_COSINE), and the end to end (e2e.py): `lfr-agent run --until-end` on a short clip
# against the fleet's TLS Mosquitto on this host, the alert received by `lfr-alerts listen`
# here, a stranger giving none.
#   FACES (4), MIN_COSINE (0.999), LFW (../shared/datasets/lfw), ARM64_ROOT, PYTHON (host venv)
#   The package pins ai-edge-litert 1.4.0 on arm64 (tools/deb/build.sh, LITERT=...): 2.3.0,
#   which pip picks by itself (cp311 manylinux_2_27_aarch64), segfaults under qemu-user 7.2
#   in allocate_tensors with its default XNNPACK delegate (fine without it): an emulator
#   problem until a board shows otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
FACES=${FACES:-4}
MIN_COSINE=${MIN_COSINE:-0.999}
LFW=${LFW:-../shared/datasets/lfw}
LITERT=${LITERT-1.4.0}
HOST_PY=${PYTHON:-.venv/bin/python}
OUT=${ARM64_OUT:-reports/arm64}
PREFIX=/opt/lfr-edge

say() { echo "test-arm64: $*" >&2; }
t_start=$SECONDS
mkdir -p "$OUT"
ROOT=$(tools/arm64/root.sh)
say "root $ROOT ready ($((SECONDS - t_start)) s)"

mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  # The throwaway fleet (its keys included) goes with the run.
  if [ -n "${FLEET:-}" ]; then rm -rf "$FLEET"; rmdir "$ROOT$FLEET" 2>/dev/null || true; fi
}
trap cleanup EXIT
# /proc and /sys (XNNPACK reads the CPU list there); debootstrap made the device nodes.
for fs in proc sys; do
  if ! mountpoint -q "$ROOT/$fs"; then
    mount -t "${fs/sys/sysfs}" "$fs" "$ROOT/$fs"
    mounted+=("$ROOT/$fs")
  fi
done
# apt's log wants a pty; debootstrap made the other device nodes.
if ! mountpoint -q "$ROOT/dev/pts"; then
  mount --bind /dev/pts "$ROOT/dev/pts"
  mounted+=("$ROOT/dev/pts")
fi

inroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
as_agent() { inroot runuser -u lfr-agent -- "$@"; }

# The package, built here for arm64 (wheels from the registry at build time), installed with
# apt as on a Pi: no network inside the root at install time (Depends are in the cached root).
t0=$SECONDS
deb=$(ARCH=arm64 LITERT="$LITERT" OUT="$OUT/deb" PYTHON="$HOST_PY" tools/deb/build.sh)
say "built $deb in $((SECONDS - t0)) s"
t0=$SECONDS
if inroot dpkg-query -W lfr-edge >/dev/null 2>&1; then
  inroot dpkg --purge lfr-edge >/dev/null  # a rerun on the cached root starts from scratch
fi
cp "$deb" "$ROOT/tmp/"
inroot apt-get install -y -q "/tmp/$(basename "$deb")" >"$OUT/apt-install.log" 2>&1 ||
  { tail -20 "$OUT/apt-install.log" >&2; exit 1; }
rm -f "$ROOT/tmp/$(basename "$deb")"
grep -q 'include-system-site-packages = true' "$ROOT$PREFIX/.venv/pyvenv.cfg"
say "apt install ./$(basename "$deb"): $((SECONDS - t0)) s: $(inroot $PREFIX/.venv/bin/python -c \
  'import platform, importlib.metadata as m; print(platform.machine(), platform.python_version(), "ai-edge-litert", m.version("ai-edge-litert"), "numpy", m.version("numpy"))')"
inroot lfr-agent --help >/dev/null
say "lfr-agent --help: ok"

# Provisioning (quickstart on the host, in a directory bind-mounted at the same path inside the
# root, so that the fleet's paths mean the same on both sides), then the technician's
# preflight inside the root, as the service user.
t0=$SECONDS
FLEET=$(mktemp -d /tmp/lfr-arm64-fleet.XXXXXX)
"$(dirname "$HOST_PY")/lfr-provision" quickstart --dir "$FLEET" --devices 1 >/dev/null
chmod 0755 "$FLEET"
mkdir -p "$ROOT$FLEET"
mount --bind "$FLEET" "$ROOT$FLEET"
mounted=("$ROOT$FLEET" "${mounted[@]}")
inroot chown -R lfr-agent:lfr-agent "$FLEET/devices/cam-01"
# No camera (nor Debian's picamera2) in the root: --no-camera, and a file source stands in.
as_agent lfr-agent check --offline --no-camera --source "file:$FLEET" \
  --config "$FLEET/devices/cam-01/agent.toml"
say "provision + check --offline as lfr-agent: $((SECONDS - t0)) s"

# The same faces on both machines; the arm64 side loads every model hash-checked.
rm -rf "$ROOT/srv/faces" && mkdir -p "$ROOT/srv/faces" "$OUT"
[ -d "$LFW" ] || { say "no LFW at $LFW (set LFW=...)"; exit 2; }
"$HOST_PY" - "$LFW" "$FACES" "$ROOT/srv/faces" <<'PY'
import shutil, sys
from pathlib import Path
sys.path.insert(0, "tools/arm64")
from agreement import pick_faces
for f in pick_faces(Path(sys.argv[1]), int(sys.argv[2])):
    (Path(sys.argv[3]) / f.parent.name).mkdir()
    shutil.copy(f, Path(sys.argv[3]) / f.parent.name / f.name)
PY
cp tools/arm64/agreement.py "$ROOT/srv/agreement.py"
t0=$SECONDS
inroot env LFR_MODELS_DIR=$PREFIX/models $PREFIX/.venv/bin/python /srv/agreement.py embed --lfw /srv/faces --faces "$FACES" \
  --out /srv/arm64.npz >"$OUT/arm64-timings.json"
say "arm64 embeddings of $FACES faces, both profiles: $((SECONDS - t0)) s"
cp "$ROOT/srv/arm64.npz" "$OUT/arm64.npz"
"$HOST_PY" tools/arm64/agreement.py embed --lfw "$ROOT/srv/faces" --faces "$FACES" \
  --out "$OUT/x86.npz" >"$OUT/x86-timings.json" 2>/dev/null
"$HOST_PY" - "$OUT" <<'PY'
import json, sys
a = json.load(open(f"{sys.argv[1]}/arm64-timings.json"))
x = json.load(open(f"{sys.argv[1]}/x86-timings.json"))
for p in a:
    same = a[p]["model_hashes"] == x[p]["model_hashes"]
    print(f"{p:9s} arm64 {a[p]['per_face_s']:.2f} s/face (load {a[p]['load_s']:.1f} s) vs x86 "
          f"{x[p]['per_face_s']:.3f} s/face; models hash-checked, same files: {same}")
    assert same, p
PY
status=0
if ! "$HOST_PY" tools/arm64/agreement.py compare "$OUT/x86.npz" "$OUT/arm64.npz" \
  --min "$MIN_COSINE" | tee "$OUT/agreement.txt"; then status=1; fi

# The end to end: the packaged agent in the root, broker and control room on this host.
t0=$SECONDS
if ! "$HOST_PY" -m tools.arm64.e2e --root "$ROOT" --fleet "$FLEET" --lfw "$LFW" |
  tee "$OUT/e2e.txt"; then status=1; fi
cp "$FLEET/agent-run.log" "$FLEET/listener.log" "$OUT/" 2>/dev/null || true
say "end to end: $((SECONDS - t0)) s"
say "total $((SECONDS - t_start)) s"
exit "$status"
