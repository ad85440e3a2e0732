"""``lfr-provision``: the authority (ops) and the enrolment of devices (technician)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.io.console import EXIT_OK, run
from provisioning.authority import init_authority
from provisioning.enrol import approve, device_init, device_install

PROG = "lfr-provision"


def _now() -> datetime:
    return datetime.now(UTC)


def _init_authority(args: argparse.Namespace) -> int:
    authority = init_authority(args.out, args.ops_keys, args.threshold, _now())
    print(
        f"authority created in {authority.root}: {len(authority.policy.ops_keys)} ops keys, "
        f"threshold {authority.policy.threshold}"
    )
    for kid in authority.policy.ops_keys:
        print(f"  ops key {kid}")
    print(f"  CA certificate {authority.ca_cert_path} (keep ca.key offline when not approving)")
    return EXIT_OK


def _device_init(args: argparse.Namespace) -> int:
    request = device_init(args.id, args.site, args.state, _now())
    print(f"device {args.id}@{args.site}: keys created in {Path(args.state) / 'keys'} (0600)")
    print(f"give {request} to ops for approval (it holds public keys only)")
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    record = approve(args.request, args.authority, args.out, _now())
    print(
        f"approved {record.device_id}@{record.site}: certificate "
        f"{record.cert_fingerprint_sha256[:16]}… valid until {record.cert_not_after}"
    )
    print(f"install bundle written to {args.out} (device.crt, ca.crt, trust.json)")
    return EXIT_OK


def _device_install(args: argparse.Namespace) -> int:
    trust = device_install(args.bundle, args.state)
    print(
        f"installed {trust.device_id}@{trust.site}: {len(trust.policy.ops_keys)} pinned ops "
        f"keys, threshold {trust.policy.threshold}"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "init-authority",
        help="create the CA, ops signing keys and the adjudication key (ops workstation)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--ops-keys",
        type=int,
        default=2,
        metavar="N",
        help="number of ops signing keys (default 2)",
    )
    p.add_argument(
        "--threshold",
        type=int,
        default=2,
        metavar="K",
        help="signatures a device requires (default 2: two-person rule)",
    )
    p.set_defaults(handler=_init_authority)

    p = sub.add_parser(
        "device-init", help="create this device's keys and enrolment request (on the device)"
    )
    p.add_argument("--id", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_device_init)

    p = sub.add_parser(
        "approve", help="verify a request, issue the device certificate, record the device (ops)"
    )
    p.add_argument("request", type=Path, metavar="REQUEST")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR")
    p.set_defaults(handler=_approve)

    p = sub.add_parser("device-install", help="install what ops approved (on the device)")
    p.add_argument("bundle", type=Path, metavar="BUNDLE_DIR")
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_device_install)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
