"""``lfr-watchlist``: ops build, seal and sign watchlists for devices."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.io.console import EXIT_OK, UsageError, parse_duration, run
from agent.io.files import atomic_write, read_bounded
from protocol import hpke
from protocol.entries import DTYPES, parse_entries_file
from protocol.limits import DEFAULT_LIMITS
from protocol.watchlist import seal_bundle
from provisioning.authority import Authority, load_ops_signer
from provisioning.registry import Registry

PROG = "lfr-watchlist"


def _seal(args: argparse.Namespace) -> int:
    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry)
    device = registry.get(args.device)
    if device.status != "active":
        raise UsageError(f"device {args.device} is {device.status}; not sealing to it")
    signers = [load_ops_signer(path) for path in args.sign_with]
    kids = [kid for _, kid in signers]
    unknown = [kid for kid in kids if kid not in authority.policy.ops_keys]
    if unknown:
        raise UsageError(f"signing key {unknown[0]} is not an ops key of this authority")
    if len(set(kids)) < authority.policy.threshold:
        raise UsageError(
            f"{len(set(kids))} distinct signing key(s) given; devices require "
            f"{authority.policy.threshold} (--sign-with once per ops key)"
        )
    entries = parse_entries_file(
        read_bounded(args.entries, DEFAULT_LIMITS.entries_file_bytes, "entries file")
    )
    now = datetime.now(UTC)
    bundle = seal_bundle(
        entries,
        device_id=device.device_id,
        site=device.site,
        deployment_id=args.deployment,
        version=args.version,
        issued_at=now.replace(microsecond=0),
        expires_at=now.replace(microsecond=0) + args.expires,
        recipient=device.hpke_key(args.suite),
        signers=signers,
        suite=args.suite,
        dtype=args.dtype,
    )
    atomic_write(args.out, bundle, 0o600)
    print(
        f"sealed {len(entries.entries)} entries for {device.device_id}@{device.site}: "
        f"version {args.version}, deployment {args.deployment}, expires in {args.expires}, "
        f"{len(set(kids))} signature(s), {len(bundle)} bytes -> {args.out}"
    )
    return EXIT_OK


def _suite(text: str) -> str:
    aliases = {"x25519": hpke.X25519_CHACHA, "mlkem768-x25519": hpke.HYBRID_CHACHA}
    suite = aliases.get(text, text)
    if suite not in hpke.SUITES:
        raise argparse.ArgumentTypeError(f"unknown suite {text!r} (x25519 or mlkem768-x25519)")
    return suite


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"version must be a positive integer, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("seal", help="seal an entries file to one device and sign it (offline)")
    p.add_argument("entries", type=Path, metavar="ENTRIES")
    p.add_argument("--device", required=True, metavar="ID")
    p.add_argument("--registry", type=Path, required=True, metavar="REG")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--sign-with", type=Path, action="append", required=True, metavar="KEYFILE")
    p.add_argument("--version", type=_version, required=True, metavar="N")
    p.add_argument("--expires", type=parse_duration, required=True, metavar="DURATION")
    p.add_argument("--deployment", required=True, metavar="NAME")
    p.add_argument(
        "--suite",
        type=_suite,
        default=hpke.DEFAULT_SUITE,
        help="x25519 (default) or mlkem768-x25519 (post-quantum hybrid)",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float16")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE")
    p.set_defaults(handler=_seal)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
