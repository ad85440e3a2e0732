#!/usr/bin/env bash
# make test-arm64: the node's code on arm64 (Debian 12 root under qemu-user, see root.sh).
# Installs the project as a node would (venv + aarch64 wheels from the registry, models under
# /opt/lfr-edge/models), then inside the root: provisioning, `lfr-agent check --offline`, the
# models' hash check, and each profile's embeddings of FACES LFW faces, compared with this
# machine's (x86) on the same faces: fails below MIN_COSINE.
#   FACES (4), MIN_COSINE (0.999), LFW (../shared/datasets/lfw), ARM64_ROOT, PYTHON (host venv)
#   LITERT: the ai-edge-litert pinned in the root (1.4.0). 2.3.0, which pip picks by itself
#   (cp311 manylinux_2_27_aarch64), segfaults under qemu-user 7.2 in allocate_tensors with
#   its default XNNPACK delegate (fine without it): an emulator problem until a board shows
#   otherwise. LITERT= (empty) keeps what pip chose.
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
ROOT=$(tools/arm64/root.sh)
say "root $ROOT ready ($((SECONDS - t_start)) s)"

mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
# /proc and /sys (XNNPACK reads the CPU list there); debootstrap made the device nodes.
for fs in proc sys; do
  if ! mountpoint -q "$ROOT/$fs"; then
    mount -t "${fs/sys/sysfs}" "$fs" "$ROOT/$fs"
    mounted+=("$ROOT/$fs")
  fi
done
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"  # pip reaches the registry from inside
# ... through whatever TLS trust this machine's pip uses (a proxy's CA, say).
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
cp "$HOST_CA" "$ROOT/etc/lfr-host-ca.crt"
printf '[global]\ncert = /etc/lfr-host-ca.crt\n' >"$ROOT/etc/pip.conf"

inroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 LFR_MODELS_DIR=$PREFIX/models PIP_CERT=/etc/lfr-host-ca.crt \
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"; }

# The code as a node gets it: the project's wheel (pure Python, built here: building it under
# emulation takes minutes) installed in its own venv, the aarch64 dependencies from the registry.
t0=$SECONDS
rm -rf "$ROOT$PREFIX/dist" && mkdir -p "$ROOT$PREFIX/dist" "$ROOT$PREFIX/models"
"$HOST_PY" -m pip wheel --quiet --no-deps -w "$ROOT$PREFIX/dist" . >/dev/null
cp models/MANIFEST.json models/*.tflite "$ROOT$PREFIX/models/"
if [ ! -x "$ROOT$PREFIX/.venv/bin/python" ]; then
  inroot python3.11 -m venv $PREFIX/.venv
  inroot $PREFIX/.venv/bin/python -m pip install --quiet --upgrade pip
fi
wheel=$(cd "$ROOT$PREFIX/dist" && ls lfr_edge-*.whl)
inroot $PREFIX/.venv/bin/python -m pip install --quiet --force-reinstall --no-deps "$PREFIX/dist/$wheel"
inroot $PREFIX/.venv/bin/python -m pip install --quiet "$PREFIX/dist/$wheel"
if [ -n "$LITERT" ]; then
  inroot $PREFIX/.venv/bin/python -m pip install --quiet "ai-edge-litert==$LITERT"
fi
say "installed in $((SECONDS - t0)) s: $(inroot $PREFIX/.venv/bin/python -c \
  'import platform, importlib.metadata as m; print(platform.machine(), platform.python_version(), "ai-edge-litert", m.version("ai-edge-litert"), "numpy", m.version("numpy"))')"

# Provisioning and the technician's preflight, inside the root.
t0=$SECONDS
inroot rm -rf /srv/fleet
inroot $PREFIX/.venv/bin/lfr-provision quickstart --dir /srv/fleet --devices 1 >/dev/null
# No camera (nor Debian's picamera2) in the root: --no-camera, and a file source stands in.
inroot $PREFIX/.venv/bin/lfr-agent check --offline --no-camera --source file:/srv/fleet \
  --config /srv/fleet/devices/cam-01/agent.toml
say "provision + check --offline: $((SECONDS - t0)) s"

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
inroot $PREFIX/.venv/bin/python /srv/agreement.py embed --lfw /srv/faces --faces "$FACES" \
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
say "total $((SECONDS - t_start)) s"
exit "$status"
