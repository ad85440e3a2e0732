"""``lfr-alerts``: the control room's side — verify match events and open their probe crops."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
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
from protocol.topics import DEFAULT_SHARE_GROUP, Kind, fleet_filter, shared
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


def _page_tls(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The TLS context and the host names the page answers to (from its certificate)."""
    from cryptography import x509

    from central.console.server import tls_context

    if args.tls_cert is None:
        if not args.insecure_localhost:
            raise UsageError(
                "the officers' page needs --tls-cert (issue one with lfr-provision page-cert); "
                "plain HTTP only with --insecure-localhost on 127.0.0.1"
            )
        if args.host != "127.0.0.1":
            raise UsageError("--insecure-localhost serves plain HTTP on 127.0.0.1 only")
        return None, ["127.0.0.1", "localhost"]
    if args.insecure_localhost:
        raise UsageError("give either --tls-cert or --insecure-localhost, not both")
    key = args.tls_key or args.tls_cert.with_suffix(".key")
    read_private(key, "page TLS key")  # refuses a key file others can read
    cert = x509.load_pem_x509_certificate(read_bounded(args.tls_cert, 64 * 1024, "page cert"))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise UsageError(f"{args.tls_cert} names no host (no subjectAltName)") from None
    names = [*san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tls_context(args.tls_cert, key), names


def _serve(args: argparse.Namespace) -> int:
    from central.console.context import Console
    from central.console.instructions import load_instructions
    from central.console.server import serve
    from central.console.strength import load_curves
    from central.ops_pages import OpsPages
    from central.sessions import Sessions

    if args.highlight_after <= 0:
        raise UsageError("--highlight-after must be a positive number of seconds")
    instructions = load_instructions(args.instructions)
    context, names = _page_tls(args)
    allowed = args.allow_host or names
    store = _open_store(args.db)
    key = load_hpke_private(read_private(args.adjudication_key, "adjudication key"))
    if not any(officer.active for officer in store.officers()):
        print("no active officer yet: add one with lfr-alerts officers add NAME", flush=True)
    sessions = Sessions(store, idle=args.idle_timeout, absolute=args.session_lifetime)
    console = Console(
        store,
        key,
        sessions,
        allowed_hosts=allowed,
        references=args.references,
        instructions=instructions,
        curves=load_curves(args.models),
        highlight_after=args.highlight_after,
        secure=context is not None,
        ops=OpsPages(store, args.registry, args.status_interval.total_seconds()),
    )
    server = serve(console, args.host, args.port, context)
    scheme = "https" if context is not None else "http"
    print(
        f"officers' page on {scheme}://{args.host}:{server.server_address[1]}/ "
        f"(answers to: {', '.join(allowed)})",
        flush=True,
    )
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


def _audit(args: argparse.Namespace) -> int:
    import json

    store = _open_store(args.db)
    try:
        entries = store.audit_log(args.limit, args.event)
    finally:
        store.close()
    if args.json:
        print(json.dumps([vars(e) for e in entries], indent=2))
        return EXIT_OK
    for e in entries:
        print(f"{e.at}  {e.officer}  {e.action}  {e.event_id or '-'}  {e.client}  {e.detail}")
    return EXIT_OK


def _new_password(args: argparse.Namespace) -> str:
    from central.passwords import MAX_LENGTH

    if args.password_stdin:
        line = sys.stdin.readline(MAX_LENGTH + 2)
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ; nothing changed")
    return first


def _officers(args: argparse.Namespace) -> int:
    from central.passwords import WeakPassword, check_policy, hash_password, valid_name

    store = _open_store(args.db)
    try:
        if args.officers_command == "list":
            for officer in store.officers():
                state = "active" if officer.active else "disabled"
                print(f"{officer.name}\t{state}\tsince {officer.changed_at}")
            return EXIT_OK
        if not valid_name(args.name):
            raise UsageError(
                f"officer name {args.name!r}: 1-64 letters, digits, spaces, . _ ' - "
                "(starting with a letter or digit)"
            )
        if args.officers_command == "disable":
            if not store.disable_officer(args.name):
                raise UsageError(f"no officer {args.name!r}")
            store.audit(args.name, "officer_disabled", "cli")
            print(f"officer {args.name} disabled; their sessions have ended")
            return EXIT_OK
        exists = any(o.name == args.name for o in store.officers())
        if exists and not args.reset:
            raise UsageError(f"officer {args.name!r} exists (--reset sets a new password)")
        if args.reset and not exists:
            raise UsageError(f"no officer {args.name!r} to reset")
        password = _new_password(args)
        try:
            check_policy(password, args.name)
        except WeakPassword as exc:
            raise UsageError(str(exc)) from None
        hashed = hash_password(password)
        if args.reset:
            store.reset_officer(args.name, hashed)
            store.audit(args.name, "officer_password_reset", "cli")
            print(f"officer {args.name}: new password set, enabled; old sessions ended")
        elif not store.add_officer(args.name, hashed):
            raise UsageError(f"officer {args.name!r} exists")
        else:
            store.audit(args.name, "officer_added", "cli")
            print(f"officer {args.name} added")
    finally:
        store.close()
    return EXIT_OK


def _open_store(url: str) -> Any:
    from central.store import AlertStore, StoreError

    try:
        return AlertStore(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _report(args: argparse.Namespace) -> int:
    from central.pilot_files import report

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


def _officer_commands(sub: Any) -> None:
    p = sub.add_parser("officers", help="officers' accounts for the page: add, disable, list")
    officers = p.add_subparsers(dest="officers_command", required=True, metavar="ACTION")
    for action, text in (
        ("add", "a new officer (password asked twice, or --password-stdin)"),
        ("disable", "disable an officer and end their sessions"),
        ("list", "officers and whether they are active"),
    ):
        q = officers.add_parser(action, help=text)
        q.add_argument("--db", default="sqlite:///alerts.db")
        if action != "list":
            q.add_argument("name", metavar="NAME")
        if action == "add":
            q.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password from the first line of standard input (scripts)",
            )
            q.add_argument(
                "--reset", action="store_true", help="set a new password for an existing officer"
            )
        q.set_defaults(handler=_officers)
    p = sub.add_parser(
        "audit", help="who logged in, viewed which probe and decided what (newest last)"
    )
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument("--event", metavar="EVENT_ID", help="only this alert's entries")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="the newest N (200)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_audit)


def _serve_command(sub: Any) -> None:
    p = sub.add_parser("serve", help="the officers' page: alerts, probe crops, adjudication")
    p.add_argument("--db", default="sqlite:///alerts.db")
    p.add_argument("--adjudication-key", type=Path, required=True, metavar="KEY")
    p.add_argument(
        "--references",
        type=Path,
        metavar="DIR",
        help="the control room's reference images: DIR/<subject_ref>.jpg|.png, or "
        "DIR/<subject_ref>/ with the photos given to lfr-watchlist enrol",
    )
    p.add_argument(
        "--instructions",
        type=Path,
        metavar="FILE.toml",
        help='the deployment\'s instructions per subject category (category = "text")',
    )
    p.add_argument(
        "--highlight-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="highlight alerts waiting longer than this in the queue (default 60)",
    )
    p.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        help="models folder whose MANIFEST.json calibration gives a match's strength "
        "(default: the installed models)",
    )
    p.add_argument(
        "--registry",
        type=Path,
        metavar="REG",
        help="the fleet registry: the fleet view lists every device in it",
    )
    p.add_argument(
        "--status-interval",
        type=parse_duration,
        default=parse_duration("30s"),
        metavar="DURATION",
        help="the devices' status interval: the fleet view shows figures older than 2.5 "
        "intervals as stale (default 30s, the agent's default)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument(
        "--tls-cert",
        type=Path,
        metavar="CERT",
        help="the page's certificate from lfr-provision page-cert (HTTPS)",
    )
    p.add_argument("--tls-key", type=Path, metavar="KEY", help="default: CERT with .key")
    p.add_argument(
        "--insecure-localhost",
        action="store_true",
        help="serve plain HTTP on 127.0.0.1 without TLS (a single-machine demo only)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name the page answers to (repeatable; default: the certificate's names)",
    )
    p.add_argument(
        "--idle-timeout",
        type=parse_duration,
        default=parse_duration("15m"),
        metavar="DURATION",
        help="a session ends after this long without a request (default 15m)",
    )
    p.add_argument(
        "--session-lifetime",
        type=parse_duration,
        default=parse_duration("12h"),
        metavar="DURATION",
        help="a session ends this long after login whatever happens (default 12h)",
    )
    p.set_defaults(handler=_serve)


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
    p.add_argument(
        "--group",
        default=DEFAULT_SHARE_GROUP,
        help="shared subscription group: the one the broker allows the alerts role "
        f"(lfr-provision broker-config --share-group, default {DEFAULT_SHARE_GROUP})",
    )
    p.add_argument(
        "--db",
        default="sqlite:///alerts.db",
        help="sqlite:///FILE (default alerts.db) or postgresql://...",
    )
    p.set_defaults(handler=_listen)

    _serve_command(sub)

    _officer_commands(sub)

    p = sub.add_parser(
        "report",
        help="pilot assessment per site and day, camera and hour, and per person (Markdown, "
        "0600; charts need matplotlib; the same report is the page's /deployment)",
    )
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
