#!/usr/bin/env bash
# Builds (once) an arm64 Debian 12 root for running the node's code under qemu-user, and
# prints its path. Cached: a rerun with the root complete returns at once.
#   ARM64_ROOT  where the root lives (default: .cache/arm64/root, git-ignored)
#   MIRROR      Debian mirror (default: the first URIs: line of this machine's apt sources)
set -euo pipefail
ROOT=${ARM64_ROOT:-.cache/arm64/root}
STAMP="$ROOT/.lfr-root-complete"
SUITE=bookworm
# What the node needs from apt: the interpreter, venv (ensurepip; its python3.11-distutils
# dependency is virtual, which debootstrap does not resolve), CA certificates for pip, and the
# .deb's Depends (python3, python3-venv, systemd), so that `apt install ./lfr-edge_*.deb` in
# the cached root configures only the package itself.
INCLUDE=python3.11,python3.11-venv,python3-distutils,ca-certificates,python3,python3-venv,systemd

say() { echo "arm64-root: $*" >&2; }

ensure_host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing host packages: ${missing[*]} (install them with: apt-get install ${missing[*]})"
    exit 2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# Registers qemu-aarch64 with binfmt_misc when the kernel lets us (root, binfmt_misc
# mountable), so that chroot and every exec inside the root run arm64 binaries. The F flag
# opens the interpreter now, so it need not exist inside the root.
ensure_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e "$dir/qemu-aarch64" ] && return 0
  if [ ! -e "$dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || true
  fi
  [ -e "$dir/qemu-aarch64" ] && return 0
  if [ -w "$dir/register" ] && [ -r /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$dir/register" 2>/dev/null || true
  fi
  [ -e "$dir/qemu-aarch64" ]
}

mirror() {
  if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
  local m
  m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || { say "no Debian mirror found in apt sources: set MIRROR=..."; exit 2; }
  echo "$m"
}

main() {
  if [ -e "$STAMP" ]; then echo "$ROOT"; return 0; fi
  ensure_host_tools
  if ! ensure_binfmt; then
    # Without binfmt, every exec inside the root (dpkg's maintainer scripts, venv's ensurepip)
    # would need qemu in front of it, which qemu-user cannot do by itself.
    say "cannot register qemu-aarch64 with binfmt_misc (needs root and a mountable binfmt_misc);"
    say "run as root on a kernel that allows it, or build the root elsewhere and set ARM64_ROOT"
    exit 2
  fi
  # A test run killed before its cleanup may have left /proc or /sys mounted inside: never recurse into it.
  for fs in proc sys; do
    if [ -d "$ROOT/$fs" ] && mountpoint -q "$ROOT/$fs"; then umount -l "$ROOT/$fs"; fi
  done
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  local t0=$SECONDS
  say "debootstrap --arch=arm64 $SUITE into $ROOT (emulated second stage: several minutes)"
  debootstrap --arch=arm64 --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$(mirror)" \
    >"$ROOT.log" 2>&1 || { say "debootstrap failed: see $ROOT.log"; tail -5 "$ROOT.log" >&2; exit 1; }
  say "root built in $((SECONDS - t0)) s"
  touch "$STAMP"
  echo "$ROOT"
}

main "$@"
