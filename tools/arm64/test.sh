#!/usr/bin/env bash
# make test-arm64: the node's code on arm64 (Debian 12 root under qemu-user, see root.sh).
# Installs the project as a node would (venv + aarch64 wheels from the registry, models under
# /opt/lfr-edge/models), then inside the root: provisioning, `lfr-agent check --offline`, the
# models' hash check, and each profile's embeddings of FACES LFW faces, compared with this
# machine's (x86) on the same faces: fails below MIN_COSINE.
#   FACES (4), MIN_COSINE (0.999), LFW (../shared/datasets/lfw), ARM64_ROOT, PYTHON (host venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
FACES=${FACES:-4}
MIN_COSINE=${MIN_COSINE:-0.999}
LFW=${LFW:-../shared/datasets/lfw}
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
# /proc only: debootstrap made the device nodes the root needs (null, zero, urandom).
if ! mountpoint -q "$ROOT/proc"; then
  mount -t proc proc "$ROOT/proc"
  mounted+=("$ROOT/proc")
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"  # pip reaches the registry from inside

inroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 LFR_MODELS_DIR=$PREFIX/models "$@"; }

# The code as a node gets it: a normal (non-editable) install in its own venv.
t0=$SECONDS
rm -rf "$ROOT$PREFIX/src" && mkdir -p "$ROOT$PREFIX/src" "$ROOT$PREFIX/models"
tar --exclude=./.venv --exclude=./.cache --exclude=./.git --exclude=./reports \
  --exclude=./models/.cache --exclude=./models/.build-venv --exclude='__pycache__' -cf - . |
  tar -xf - -C "$ROOT$PREFIX/src"
cp models/MANIFEST.json models/*.tflite "$ROOT$PREFIX/models/"
if [ ! -x "$ROOT$PREFIX/.venv/bin/python" ]; then
  inroot python3.11 -m venv $PREFIX/.venv
  inroot $PREFIX/.venv/bin/python -m pip install --quiet --upgrade pip
fi
inroot $PREFIX/.venv/bin/python -m pip install --quiet --disable-pip-version-check $PREFIX/src
say "installed in $((SECONDS - t0)) s: $(inroot $PREFIX/.venv/bin/python -c \
  'import platform, importlib.metadata as m; print(platform.machine(), platform.python_version(), "ai-edge-litert", m.version("ai-edge-litert"), "numpy", m.version("numpy"))')"

# Provisioning and the technician's preflight, inside the root.
t0=$SECONDS
inroot rm -rf /srv/fleet
inroot $PREFIX/.venv/bin/lfr-provision quickstart --dir /srv/fleet --devices 1 >/dev/null
inroot $PREFIX/.venv/bin/lfr-agent check --offline --config /srv/fleet/devices/cam-01/agent.toml
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
