"""``lfr-alerts``: the control room's side — verify match events and open their probe crops."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lfrkit.console import EXIT_OK, UsageError, host_port, parse_duration, run
from lfrkit.files import atomic_write, read_bounded, read_private
from lfrkit.mqtt import MqttError, MqttLink, MqttSettings
from protocol.errors import RejectedInput
from protocol.event import MatchEvent, open_probe, verify_event
from protocol.keys import load_hpke_private
from protocol.limits import DEFAULT_LIMITS
from protocol.topics import Kind, fleet_filter, shared
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


def _link_settings(args: argparse.Namespace, session_expiry: int = 0) -> MqttSettings:
    host, port = args.broker
    key = args.client_key or args.client_cert.with_suffix(".key")
    ca = args.ca or args.registry.parent / "ca.crt"
    return MqttSettings(
        host, port, ca, args.client_cert, key, session_expiry=session_expiry, manual_ack=True
    )


def _listen(args: argparse.Namespace) -> int:
    from central.listener import Listener
    from central.store import AlertStore, StoreError

    try:
        store = AlertStore(args.db)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    # A persistent session: while every listener is away the broker queues events for the
    # group (a day), so the control room misses none.
    link = MqttLink(_link_settings(args, session_expiry=86400))
    try:
        link.connect()
    except MqttError as exc:
        raise UsageError(str(exc)) from None

    def show(event: MatchEvent) -> None:
        print(
            f"ALERT {event.observed_at.isoformat(timespec='seconds')} {event.site}/"
            f"{event.device_id} subject {event.subject_ref} ({event.category}) score "
            f"{event.score:.3f} >= {event.threshold:.3f} event {event.event_id}",
            flush=True,
        )

    listener = Listener(store, args.registry, link, on_alert=show)
    granted = link.subscribe(
        [
            (shared(args.group, fleet_filter(Kind.EVENTS)), 1),
            (shared(args.group, fleet_filter(Kind.STATUS)), 1),
        ]
    )
    if granted[0] >= 0x80:
        raise UsageError(f"the broker refused the subscription (reason {granted[0]:#x})")
    print(f"listening for events as group {args.group!r}; storing in {args.db}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        listener.run(stop)
    finally:
        link.close()
        store.close()
        stats = listener.stats
        print(
            f"stopped: {stats.stored} alerts stored, {stats.duplicates} duplicates, "
            f"{sum(stats.rejected.values())} refused {dict(stats.rejected)}",
            flush=True,
        )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from central.store import AlertStore, StoreError
    from central.web import OfficerApp, serve

    try:
        store = AlertStore(args.db)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    key = load_hpke_private(read_private(args.adjudication_key, "adjudication key"))
    server = serve(OfficerApp(store, key, args.references), args.host, args.port)
    print(f"officers' page on http://{args.host}:{server.server_address[1]}/", flush=True)
    # shutdown() waits for serve_forever() to return, so it runs off the serving thread.
    stopper = lambda *_: threading.Thread(target=server.shutdown).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stopper)
    signal.signal(signal.SIGINT, stopper)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        store.close()
    return EXIT_OK


def _open_store(url: str) -> Any:
    from central.store import AlertStore, StoreError

    try:
        return AlertStore(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _report(args: argparse.Namespace) -> int:
    from central.pilot import report

    store = _open_store(args.db)
    try:
        path = report(store, args.out)
    finally:
        store.close()
    print(f"pilot report: {path}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from central.pilot import export, since_arg, write

    if args.with_images and args.adjudication_key is None:
        raise UsageError("--with-images needs --adjudication-key to open the probes")
    key = (
        load_hpke_private(read_private(args.adjudication_key, "adjudication key"))
        if args.with_images
        else None
    )
    try:
        since = since_arg(args.since)
    except RejectedInput as exc:
        raise UsageError(str(exc)) from None
    store = _open_store(args.db)
    try:
        write(args.out, export(store, since, args.format, key))
    finally:
        store.close()
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from central.pilot import purge

    store = _open_store(args.db)
    try:
        alerts, snapshots = purge(store, args.older_than, datetime.now(UTC))
    finally:
        store.close()
    print(
        f"purged {alerts} alerts (with their probes) and {snapshots} status snapshots "
        f"older than {args.older_than.days} days; their daily numbers remain in the report"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("listen", help="receive, verify and store alerts (shared subscription)")
    p.add_argument("--registry", type=Path, required=True, metavar="REG")
    p.add_argument("--broker", type=host_port, required=True, metavar="HOST:PORT")
    p.add_argument("--client-cert", type=Path, required=True, metavar="CERT")
    p.add_argument("--client-key", type=Path, metavar="KEY", help="default: CERT with .key")
    p.add_argument("--ca", type=Path, metavar="CA", help="default: ca.crt beside the registry")
    p.add_argument("--group", default="control-room", help="shared subscription group")
    p.add_argument(
        "--db",
        default="sqlite:///alerts.db",
        help="sqlite:///FILE (default alerts.db) or postgresql://...",
    )
    p.set_defaults(handler=_listen)

    p = sub.add_parser("serve", help="the officers' page: alerts, probe crops, adjudication")
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument("--adjudication-key", type=Path, required=True, metavar="KEY")
    p.add_argument(
        "--references",
        type=Path,
        metavar="DIR",
        help="the control room's reference images, DIR/<subject_ref>.jpg",
    )
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(handler=_serve)

    p = sub.add_parser("report", help="pilot assessment per site and day (Markdown + PNG)")
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR")
    p.set_defaults(handler=_report)

    p = sub.add_parser("export", help="alerts and outcomes as CSV or JSON")
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument("--since", default="1970-01-01", help="YYYY-MM-DD or RFC 3339 time")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")
    p.add_argument(
        "--with-images",
        action="store_true",
        help="include the decrypted probe JPEGs (needs --adjudication-key)",
    )
    p.add_argument("--adjudication-key", type=Path, metavar="KEY")
    p.set_defaults(handler=_export)

    p = sub.add_parser("purge", help="delete alerts and probes past the retention period")
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument(
        "--older-than",
        type=parse_duration,
        default=parse_duration("31d"),
        metavar="DURATION",
        help="retention (default 31d)",
    )
    p.set_defaults(handler=_purge)

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
