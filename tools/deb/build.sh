#!/usr/bin/env bash
# make deb: lfr-edge_<version>_<arch>.deb (and its .sha256) for Debian 12 / Raspberry Pi OS
# Bookworm, built with dpkg-deb. Everything the node needs travels in the package: the code
# and its dependencies as wheels for the target (hash-locked), the models, the systemd unit,
# sysusers.d and tmpfiles.d. postinst builds the venv offline (no network at install time).
#   ARCH      amd64 | arm64 (default: this machine's)
#   OUT       where the .deb goes (default: dist)
#   LITERT    ai-edge-litert pinned in the package. Default: 1.4.0 on arm64, the version
#             make test-arm64 proves (2.x segfaults under qemu-user, see tools/arm64/test.sh);
#             on amd64 the newest the resolver picks (what CI runs). LITERT= keeps the newest.
#   LINTIAN   0 skips lintian (default: run it when installed; an error fails the build)
#   PYTHON    the host interpreter with pip (default: .venv/bin/python)
#   DEB_WORK  staging directory (default: build/deb/ARCH)
#   MAINTAINER the control file's Maintainer
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "make deb: $*" >&2; }

ARCH=${ARCH:-$(dpkg --print-architecture)}
case "$ARCH" in
amd64) machine=x86_64; litert_default= ;;
arm64) machine=aarch64; litert_default=1.4.0 ;;
*) say "ARCH must be amd64 or arm64, not '$ARCH'"; exit 2 ;;
esac
LITERT=${LITERT-$litert_default}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-dist}
MAINTAINER=${MAINTAINER:-lfr-edge maintainers <lfr-edge@lists.example.org>}
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
PREFIX=/opt/lfr-edge
WORK=${DEB_WORK:-build/deb/$ARCH}
PKG=$WORK/pkg
DEB=lfr-edge_${VERSION}_${ARCH}.deb
# Reproducible: every timestamp is the last commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

rm -rf "$WORK"
mkdir -p "$PKG/DEBIAN" "$PKG$PREFIX/wheels" "$PKG$PREFIX/models" "$PKG$PREFIX/docs" \
  "$PKG/lib/systemd/system" "$PKG/usr/lib/sysusers.d" "$PKG/usr/lib/tmpfiles.d" \
  "$PKG/usr/bin" "$PKG/usr/share/doc/lfr-edge" "$PKG/usr/share/lintian/overrides" "$OUT"

# The project's own wheel (pure Python), then its dependencies for the target: binary wheels
# only, for CPython 3.11 on glibc <= 2.36 (Bookworm's). pip expands manylinux2014 but not
# manylinux_2_X tags by itself, hence the list. numpy < 2: apt's compiled modules that the
# venv sees through --system-site-packages (python3-picamera2's simplejpeg, python3-opencv)
# are built against Bookworm's numpy 1.24 and do not import under numpy 2.
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/project" .
project=$(ls "$WORK"/project/lfr_edge-"$VERSION"-*.whl)
platforms=(--platform "manylinux2014_$machine")
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$machine"); done
if ! "$PY" -m pip download --quiet --disable-pip-version-check --only-binary :all: \
  "${platforms[@]}" --python-version 3.11 --implementation cp --abi cp311 \
  -d "$PKG$PREFIX/wheels" "$project" "numpy<2" ${LITERT:+"ai-edge-litert==$LITERT"}; then
  say "could not download the $machine wheels from the registry (pip download failed above)"
  exit 3
fi
# The lock postinst installs with --require-hashes: exactly these files, nothing else.
"$PY" - "$PKG$PREFIX/wheels" <<'PY'
import hashlib, sys
from pathlib import Path
wheels = Path(sys.argv[1])
lines = []
for wheel in sorted(wheels.glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lines.append(f"{name}=={version} --hash=sha256:{digest}\n")
(wheels / "requirements.txt").write_text("".join(lines))
PY
say "$(wc -l <"$PKG$PREFIX/wheels/requirements.txt") wheels for $machine: $(cd "$PKG$PREFIX/wheels" && ls ./*.whl | sed 's|^\./||; s|-.*||' | tr '\n' ' ')"

cp models/MANIFEST.json models/*.tflite "$PKG$PREFIX/models/"
cp docs/*.md "$PKG$PREFIX/docs/"
sed "s|@PREFIX@|$PREFIX|g" systemd/lfr-agent.service >"$PKG/lib/systemd/system/lfr-agent.service"
cp systemd/lfr-agent.sysusers "$PKG/usr/lib/sysusers.d/lfr-agent.conf"
cp systemd/lfr-agent.tmpfiles "$PKG/usr/lib/tmpfiles.d/lfr-agent.conf"
# The technician's two commands on the node; the ops tools stay in the venv.
for name in lfr-agent lfr-provision; do
  sed "s|@NAME@|$name|g" tools/deb/wrapper >"$PKG/usr/bin/$name"
done
# Their manual pages: the commands' own --help, so that `man lfr-agent` works on the node.
mkdir -p "$PKG/usr/share/man/man1"
for name in lfr-agent lfr-provision; do
  {
    printf '.TH %s 1 "" "lfr-edge %s" "User Commands"\n' "$(echo "$name" | tr a-z A-Z)" "$VERSION"
    printf '.SH NAME\n%s \\- lfr-edge %s\n' "$name" \
      "$([ "$name" = lfr-agent ] && echo "camera node daemon" || echo "node provisioning")"
    printf '.SH DESCRIPTION\n.nf\n'
    COLUMNS=80 "$(dirname "$PY")/$name" --help | sed 's/\\/\\e/g; s/^[.'"'"']/\\\&&/'
    printf '.fi\n.SH SEE ALSO\n%s/docs/operator-guide.md\n' "$PREFIX"
  } | gzip -9n >"$PKG/usr/share/man/man1/$name.1.gz"
done
cp tools/deb/copyright "$PKG/usr/share/doc/lfr-edge/copyright"
cp tools/deb/lintian-overrides "$PKG/usr/share/lintian/overrides/lfr-edge"
cat >"$WORK/changelog" <<EOF
lfr-edge ($VERSION) bookworm; urgency=medium

  * Built from the lfr-edge source tree by make deb (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)).

 -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n <"$WORK/changelog" >"$PKG/usr/share/doc/lfr-edge/changelog.gz"
for script in postinst prerm postrm; do cp "tools/deb/$script" "$PKG/DEBIAN/$script"; done

cat >"$PKG/DEBIAN/control" <<EOF
Package: lfr-edge
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
Depends: python3 (>= 3.11), python3 (<< 3.12), python3-venv, systemd
Recommends: python3-picamera2
Suggests: python3-opencv
Section: misc
Priority: optional
Description: live facial recognition agent for edge camera nodes
 The lfr-edge camera node: detects and embeds faces locally with TFLite models,
 matches them against a signed, encrypted watchlist received over MQTT, and
 publishes only signed match events. Faces that match nobody are discarded.
 .
 Code, models and hash-locked Python wheels install under /opt/lfr-edge; the
 venv is built offline at install time with --system-site-packages, so that
 picamera2 from apt (python3-picamera2) is visible. Provides the lfr-agent
 service (not enabled until the node is provisioned) and the lfr-agent and
 lfr-provision commands. Keys are never created by the package.
EOF

# Modes and times normalised (root:root comes from --root-owner-group).
find "$PKG" -type d -exec chmod 0755 {} +
find "$PKG" -type f -exec chmod 0644 {} +
chmod 0755 "$PKG"/usr/bin/* "$PKG"/DEBIAN/postinst "$PKG"/DEBIAN/prerm "$PKG"/DEBIAN/postrm
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)
find "$PKG" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +
# gzip, not xz: the payload is mostly wheels (already zip-compressed); xz saved 0.5 % of 73 MB
# and took 69 s here against gzip's 3 s.
dpkg-deb --root-owner-group -Zgzip --build "$PKG" "$OUT/$DEB" >/dev/null
(cd "$OUT" && sha256sum "$DEB" >"$DEB.sha256")
say "$OUT/$DEB ($(du -h "$OUT/$DEB" | cut -f1), sha256 $(cut -c1-16 "$OUT/$DEB.sha256")...)"

if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null 2>&1; then
  # Errors fail the build; warnings are shown (overrides, each with its reason, in
  # tools/deb/lintian-overrides).
  lintian --fail-on error --suppress-tags-from-file /dev/null "$OUT/$DEB" >&2
  say "lintian: no errors"
elif [ "${LINTIAN:-1}" != 0 ]; then
  say "lintian not installed (make install-system): not checked"
fi
echo "$OUT/$DEB"
