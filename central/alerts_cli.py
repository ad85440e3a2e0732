"""``lfr-alerts``: the control room's side — verify match events and open their probe crops."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from agent.io.console import EXIT_OK, run
from agent.io.files import atomic_write, read_bounded, read_private
from protocol.event import open_probe, verify_event
from protocol.keys import load_hpke_private
from protocol.limits import DEFAULT_LIMITS
from provisioning.registry import Registry

PROG = "lfr-alerts"


def _verify(args: argparse.Namespace) -> int:
    registry = Registry.load(args.registry)
    token = read_bounded(args.event, DEFAULT_LIMITS.event_bytes, "event")
    event = verify_event(token, registry.trusted_signing_keys())
    print(
        f"verified event {event.event_id}: {event.device_id}@{event.site} "
        f"subject {event.subject_ref} score {event.score:.3f} (threshold "
        f"{event.threshold:.3f}) at {event.observed_at.isoformat()}"
    )
    if args.adjudication_key is not None and args.probe_out is not None:
        key = load_hpke_private(read_private(args.adjudication_key, "adjudication key"))
        atomic_write(args.probe_out, open_probe(event, key), 0o600)
        print(f"probe crop decrypted to {args.probe_out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("verify", help="verify one stored event (compact JWS) against the registry")
    p.add_argument("event", type=Path, metavar="EVENT")
    p.add_argument("--registry", type=Path, required=True, metavar="REG")
    p.add_argument("--adjudication-key", type=Path, metavar="KEY")
    p.add_argument(
        "--probe-out",
        type=Path,
        metavar="FILE",
        help="write the decrypted JPEG here (needs --adjudication-key)",
    )
    p.set_defaults(handler=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
