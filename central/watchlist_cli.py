"""``lfr-watchlist``: ops build, seal and sign watchlists for devices."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.fleet_ops import (
    OpsState,
    Outcome,
    collect_statuses,
    fleet_rows,
    publish_watchlists,
    select_devices,
    send_command,
    table,
)
from central.seal_checks import add_threshold_args, vet
from central.signing_audit import DEFAULT_PATH, AuditRecord, append
from lfrkit.console import EXIT_OK, UsageError, host_port, parse_duration, run
from lfrkit.files import atomic_write, read_bounded
from lfrkit.mqtt import MqttError, MqttLink, MqttSettings
from protocol import hpke
from protocol.command import MAX_VALIDITY, Action, read_command_draft
from protocol.command import TYP as COMMAND_TYP
from protocol.encoding import format_time
from protocol.entries import DTYPES, dump_entries_file, parse_entries_file
from protocol.errors import RejectedInput
from protocol.limits import DEFAULT_LIMITS
from protocol.topics import Kind, fleet_filter
from protocol.watchlist import TYP as WATCHLIST_TYP
from protocol.watchlist import read_draft, seal_bundle
from provisioning.authority import Authority, load_ops_signer
from provisioning.registry import DeviceRecord, Registry

PROG = "lfr-watchlist"
EXIT_INCOMPLETE = 1  # some device did not confirm (rejected, offline, no answer)


def _seal(args: argparse.Namespace) -> int:
    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry)
    device = registry.get(args.device)
    if device.status != "active":
        raise UsageError(f"device {args.device} is {device.status}; not sealing to it")
    # Zero or more signatures: the others are added on their own workstations with
    # ``lfr-watchlist sign`` (two people, two machines), and ``send`` checks the threshold.
    signers = _some_signers(args.sign_with or [], authority)
    kids = [kid for _, kid in signers]
    entries = parse_entries_file(
        read_bounded(args.entries, DEFAULT_LIMITS.entries_file_bytes, "entries file")
    )
    threshold, why = vet(args, entries)
    now = datetime.now(UTC)
    state = OpsState(args.state or authority.root / "ops-state.json")
    version = args.version
    if version is None:
        version = state.reserve(device.device_id, "watchlist_version")
    elif version > state.get(device.device_id, "watchlist_version"):
        state.set(device.device_id, "watchlist_version", version)  # never issued again
    bundle = seal_bundle(
        entries,
        device_id=device.device_id,
        site=device.site,
        deployment_id=args.deployment,
        version=version,
        issued_at=now.replace(microsecond=0),
        expires_at=now.replace(microsecond=0) + args.expires,
        recipient=device.hpke_key(args.suite),
        signers=signers,
        threshold=threshold,
        suite=args.suite,
        dtype=args.dtype,
    )
    draft = read_draft(bundle)
    for kid in kids:
        _audit(
            args,
            AuditRecord(
                "signed",
                "watchlist",
                draft.header.device_id,
                version,
                args.deployment,
                kid,
                draft.payload_sha256,
            ),
        )
    atomic_write(args.out, bundle, 0o600)
    print(why)
    print(
        f"sealed {len(entries.entries)} entries for {device.device_id}@{device.site}: "
        f"version {version}, deployment {args.deployment}, expires in {args.expires}, "
        f"{len(set(kids))} of {authority.policy.threshold} signature(s), {len(bundle)} bytes "
        f"-> {args.out}"
    )
    _more_needed(len(set(kids)), authority.policy.threshold, args.out)
    return EXIT_OK


def _some_signers(paths: list[Path], authority: Authority) -> list[tuple[Any, str]]:
    signers = [load_ops_signer(path) for path in paths]
    unknown = [kid for _, kid in signers if kid not in authority.policy.ops_keys]
    if unknown:
        raise UsageError(f"signing key {unknown[0]} is not an ops key of this authority")
    return signers


def _more_needed(have: int, threshold: int, path: Path) -> None:
    if have < threshold:
        print(
            f"needs {threshold - have} more signature(s) before devices accept it: "
            f"lfr-watchlist sign {path} --key ops-N.key (on the other signer's workstation)"
        )


def _audit(args: argparse.Namespace, record: AuditRecord) -> None:
    # Beside the authority's ops state when there is one; a signer's own workstation
    # (``sign`` without --authority) keeps it in their home.
    authority = getattr(args, "authority", None)
    path = args.audit or (
        DEFAULT_PATH if authority is None else Path(authority) / "signing-audit.jsonl"
    )
    try:
        append(path, record, datetime.now(UTC))
    except OSError as exc:
        # Nothing is signed or sent unrecorded.
        raise UsageError(f"cannot append to the signing audit log {path}: {exc}") from None


def _describe(data: bytes) -> tuple[str, list[str], tuple[str, ...], Any]:
    """What a signed file is (watchlist or command), the lines shown to a signer, the key
    ids that signed so far, and the parsed draft."""
    try:
        draft = read_draft(data)
    except RejectedInput as bundle_error:
        try:
            command = read_command_draft(data)
        except RejectedInput:
            raise bundle_error from None
        c = command.command
        return (
            "command",
            [
                f"command:     {c.action.value}",
                f"device:      {c.device_id} at site {c.site}",
                f"counter:     {c.counter}",
                f"valid:       {format_time(c.issued_at)} to {format_time(c.expires_at)}",
                f"payload:     sha256 {command.payload_sha256}",
            ],
            command.signatures,
            command,
        )
    h = draft.header
    return (
        "watchlist",
        [
            "watchlist bundle",
            f"device:      {h.device_id} at site {h.site}",
            f"version:     {h.version}",
            f"deployment:  {h.deployment_id}",
            f"valid:       {format_time(h.issued_at)} to {format_time(h.expires_at)}",
            "entries:     "
            + (
                "not recorded (sealed before entry counts)"
                if h.entry_count is None
                else str(h.entry_count)
            ),
            f"threshold:   {h.threshold.describe()}",
            f"payload:     sha256 {draft.payload_sha256}",
        ],
        draft.signatures,
        draft,
    )


def _sign(args: argparse.Namespace) -> int:
    from protocol.command import add_command_signature
    from protocol.watchlist import add_bundle_signature

    data = read_bounded(args.file, DEFAULT_LIMITS.bundle_bytes, "signed file")
    what, lines, signed, draft = _describe(data)
    key, kid = load_ops_signer(args.key)
    if args.authority is not None:
        _some_signers([args.key], Authority.load(args.authority))
    for line in lines:
        print(line)
    print(f"signed by:   {', '.join(signed) if signed else 'nobody yet'}")
    print(f"your key:    {kid}")
    if kid in signed:
        raise UsageError(f"key {kid} has already signed {args.file}")
    expires = draft.header.expires_at if what == "watchlist" else draft.command.expires_at
    if datetime.now(UTC) >= expires:
        raise UsageError(f"{args.file} expired at {format_time(expires)}: not signed")
    if not args.yes and not _confirm(f"sign this {what} with {kid}?"):
        raise UsageError("not signed (not confirmed; --yes for scripts)")
    add = add_bundle_signature if what == "watchlist" else add_command_signature
    try:
        out = add(data, key, kid)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if what == "watchlist":
        h = draft.header
        _audit(
            args,
            AuditRecord(
                "signed", what, h.device_id, h.version, h.deployment_id, kid, draft.payload_sha256
            ),
        )
    else:
        c = draft.command
        _audit(
            args,
            AuditRecord(
                "signed", what, c.device_id, c.counter, c.action.value, kid, draft.payload_sha256
            ),
        )
    atomic_write(args.out or args.file, out, 0o600)
    print(f"signed: {len(signed) + 1} signature(s) -> {args.out or args.file}")
    return EXIT_OK


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _make_command(args: argparse.Namespace) -> int:
    from protocol.command import Command, sign_command

    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry or authority.registry_path)
    device = select_devices(registry, [args.device], None)[0]
    signers = _some_signers(args.sign_with or [], authority)
    state = OpsState(args.state or authority.root / "ops-state.json")
    counter = state.reserve(device.device_id, "command_counter")
    now = datetime.now(UTC).replace(microsecond=0)
    command = Command(
        device.device_id, device.site, Action(args.action), counter, now, now + args.valid
    )
    data = sign_command(command, signers, allow_unsigned=True)
    draft = read_command_draft(data)
    for _, kid in signers:
        _audit(
            args,
            AuditRecord(
                "signed",
                "command",
                device.device_id,
                counter,
                args.action,
                kid,
                draft.payload_sha256,
            ),
        )
    atomic_write(args.out, data, 0o600)
    kids = {kid for _, kid in signers}
    print(
        f"{args.action} for {device.device_id}@{device.site}: counter {counter}, valid until "
        f"{format_time(command.expires_at)}, {len(kids)} of {authority.policy.threshold} "
        f"signature(s) -> {args.out}"
    )
    _more_needed(len(kids), authority.policy.threshold, args.out)
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    from central.fleet_ops import send_signed
    from protocol.jws import parse_general, require_threshold

    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry or authority.registry_path)
    state = OpsState(args.state or authority.root / "ops-state.json")
    data = read_bounded(args.file, DEFAULT_LIMITS.bundle_bytes, "signed file")
    what, _, _, draft = _describe(data)
    if what == "watchlist":
        h = draft.header
        device_id, site, number, action, detail = (
            h.device_id,
            h.site,
            h.version,
            None,
            h.deployment_id,
        )
        typ, limit, expires = WATCHLIST_TYP, DEFAULT_LIMITS.bundle_bytes, h.expires_at
    else:
        c = draft.command
        device_id, site, number, action = c.device_id, c.site, c.counter, c.action
        detail = c.action.value
        typ, limit, expires = COMMAND_TYP, DEFAULT_LIMITS.command_bytes, c.expires_at
    if datetime.now(UTC) >= expires:
        raise UsageError(f"{args.file}: not sent: it expired at {format_time(expires)}")
    # The devices' own check, against the trust they pin: a file short of the threshold is
    # refused here, not published for every device to refuse.
    jws = parse_general(data, typ, what, limit, DEFAULT_LIMITS.signatures, min_signatures=0)
    try:
        require_threshold(jws, authority.policy.ops_keys, authority.policy.threshold, what)
    except RejectedInput as exc:
        raise UsageError(f"{args.file}: not sent: {exc}") from None
    device = select_devices(registry, [device_id], None)[0]
    if device.site != site:
        raise UsageError(
            f"{args.file}: not sent: it names site {site!r}; {device_id} is at {device.site!r}"
        )
    _audit(args, AuditRecord("sent", what, device_id, number, detail, "", draft.payload_sha256))
    link = _connect(args, authority)
    try:
        outcome = send_signed(
            link, device, data, state, number=number, action=action, timeout=args.timeout
        )
    except MqttError as exc:
        raise UsageError(str(exc)) from None
    finally:
        link.close()
    return _report([outcome], "VERSION" if action is None else "COUNTER")


def _enrol(args: argparse.Namespace) -> int:
    from agent.vision.errors import VisionError
    from central.enrol import disagreeing_table, enrol, summary, weakest
    from central.thresholds import one_to_one

    try:
        entries, outcomes = enrol(
            args.images,
            profile=args.profile,
            models_dir=args.models_dir,
            pick=args.pick,
            workers=args.workers,
            detector=args.detector,
        )
    except VisionError as exc:
        raise UsageError(str(exc)) from None
    for outcome in outcomes:
        if outcome.refusal:
            print(f"refused {outcome.image}: {outcome.refusal}", file=sys.stderr)
    floor = one_to_one(entries.embedder_sha256, args.models_dir)
    unlike = [] if floor is None else disagreeing_table(entries, floor)
    for line in [*summary(outcomes, entries), *weakest(entries), *unlike]:
        print(line)
    if not entries.entries:
        raise UsageError("no subject has a usable image; nothing written")
    atomic_write(args.out, dump_entries_file(entries), 0o600)
    print(
        f"entries for profile {args.profile} ({entries.embedder_sha256[:12]}…), "
        f"faces found by {args.detector} -> {args.out}"
    )
    return EXIT_OK


def _connect(args: argparse.Namespace, authority: Authority) -> MqttLink:
    broker = args.broker or authority.broker()
    if broker is None:
        raise UsageError("no broker address: pass --broker HOST:PORT")
    key = args.client_key or args.client_cert.with_suffix(".key")
    link = MqttLink(
        MqttSettings(broker[0], broker[1], args.ca or authority.ca_cert_path, args.client_cert, key)
    )
    try:
        link.connect()
    except MqttError as exc:
        raise UsageError(str(exc)) from None
    return link


def _fleet(args: argparse.Namespace) -> tuple[Authority, list[DeviceRecord], OpsState]:
    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry or authority.registry_path)
    ids = [i for i in (args.devices or "").split(",") if i]
    devices = select_devices(registry, ids or None, args.site)
    state = OpsState(args.state or authority.root / "ops-state.json")
    return authority, devices, state


def _signers(args: argparse.Namespace, authority: Authority) -> list[tuple[Any, str]]:
    signers = [load_ops_signer(path) for path in args.sign_with]
    kids = {kid for _, kid in signers}
    unknown = kids - set(authority.policy.ops_keys)
    if unknown:
        raise UsageError(f"signing key {sorted(unknown)[0]} is not an ops key of this authority")
    if len(kids) < authority.policy.threshold:
        raise UsageError(
            f"{len(kids)} distinct signing key(s) given; devices require "
            f"{authority.policy.threshold} (--sign-with once per ops key)"
        )
    return signers


def _report(outcomes: list[Outcome], header: str) -> int:
    rows = [["DEVICE", header, "RESULT"]]
    rows += [[o.device, str(o.wanted), o.result] for o in outcomes]
    print(table(rows))
    return EXIT_OK if all(o.result == "applied" for o in outcomes) else EXIT_INCOMPLETE


def _publish(args: argparse.Namespace) -> int:
    authority, devices, state = _fleet(args)
    signers = _signers(args, authority)
    entries = parse_entries_file(
        read_bounded(args.entries, DEFAULT_LIMITS.entries_file_bytes, "entries file")
    )
    threshold, why = vet(args, entries)
    print(why)
    link = _connect(args, authority)
    try:
        outcomes = publish_watchlists(
            link,
            devices,
            entries,
            signers,
            state,
            expires=args.expires,
            deployment=args.deployment,
            threshold=threshold,
            suite=args.suite,
            dtype=args.dtype,
            timeout=args.timeout,
        )
    finally:
        link.close()
    return _report(outcomes, "VERSION")


def _command(action: Action) -> Any:
    def handler(args: argparse.Namespace) -> int:
        authority, devices, state = _fleet(args)
        signers = _signers(args, authority)
        link = _connect(args, authority)
        try:
            outcomes = send_command(link, devices, action, signers, state, timeout=args.timeout)
        finally:
            link.close()
        return _report(outcomes, "COUNTER")

    return handler


def _status(args: argparse.Namespace) -> int:
    authority = Authority.load(args.authority)
    registry = Registry.load(args.registry or authority.registry_path)
    state = OpsState(args.state or authority.root / "ops-state.json")
    refused: dict[str, str] = {}
    link = _connect(args, authority)
    try:
        link.subscribe([(fleet_filter(Kind.STATUS, args.site), 1)])
        statuses = collect_statuses(link, args.wait, registry.trusted_signing_keys(), refused)
    finally:
        link.close()
    alarms = {d: state.alarms(d, s) for d, s in statuses.items() if state.alarms(d, s)}
    if args.json:
        docs = {device: status.to_json() for device, status in statuses.items()}
        print(json.dumps(docs, indent=2, sort_keys=True))
    elif not statuses:
        print("no device has reported a status yet")
    else:
        print(table(fleet_rows(statuses, state)))
    for where, reason in sorted(refused.items()):
        print(f"status on {where} refused ({reason}): not from that device", file=sys.stderr)
    for device, found in sorted(alarms.items()):
        for alarm in found:
            print(f"{device}: {alarm}", file=sys.stderr)
    # Exit 1 when something needs a look: a status that is not its device's, or a floor
    # above what ops issued (issue 17 findings 1 and 2).
    return EXIT_INCOMPLETE if refused or alarms else EXIT_OK


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
    p = sub.add_parser("enrol", help="embed subjects' photos with the device models")
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        metavar="DIR",
        help="DIR/<subject_ref>/*.jpg|png, optional DIR/subjects.csv",
    )
    p.add_argument("--out", type=Path, required=True, metavar="ENTRIES")
    p.add_argument("--profile", default="accurate", help="embedding profile (accurate, fast)")
    p.add_argument("--models-dir", type=Path, metavar="DIR")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument(
        "--largest",
        dest="pick",
        action="store_const",
        const="largest",
        help="when an image shows several faces, use the largest (its part inside the image)",
    )
    pick.add_argument(
        "--central",
        dest="pick",
        action="store_const",
        const="central",
        help="when an image shows several faces, use the one nearest the image centre "
        "(photos cropped around the subject)",
    )
    p.add_argument("--workers", type=int, default=1, metavar="N")
    p.add_argument(
        "--detector",
        choices=("blazeface", "yunet"),  # central.enrol.DETECTORS (imported only to enrol)
        default="blazeface",
        help="face detector, as the nodes' [vision] detector (default %(default)s); either "
        "enrols for nodes of both kinds (models/README.md)",
    )
    p.set_defaults(handler=_enrol)

    p = sub.add_parser("seal", help="seal an entries file to one device and sign it (offline)")
    p.add_argument("entries", type=Path, metavar="ENTRIES")
    p.add_argument("--device", required=True, metavar="ID")
    p.add_argument("--registry", type=Path, required=True, metavar="REG")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--sign-with",
        "--sign",
        type=Path,
        action="append",
        metavar="KEYFILE",
        help="an ops key to sign with (zero or more times; others add theirs with 'sign')",
    )
    p.add_argument(
        "--version",
        type=_version,
        metavar="N",
        help="default: the next one from the ops state (reserved there)",
    )
    _audit_arg(p, state=True)
    p.add_argument("--expires", type=parse_duration, required=True, metavar="DURATION")
    p.add_argument("--deployment", required=True, metavar="NAME")
    p.add_argument(
        "--suite",
        type=_suite,
        default=hpke.DEFAULT_SUITE,
        help="x25519 (default) or mlkem768-x25519 (post-quantum hybrid)",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float16")
    add_threshold_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE")
    p.set_defaults(handler=_seal)

    _signing_parsers(sub)

    p = sub.add_parser("publish", help="seal per device, push over MQTT, wait for the devices")
    p.add_argument("entries", type=Path, metavar="ENTRIES")
    _target_args(p)
    p.add_argument("--expires", type=parse_duration, required=True, metavar="DURATION")
    p.add_argument("--deployment", required=True, metavar="NAME")
    p.add_argument("--suite", type=_suite, default=hpke.DEFAULT_SUITE)
    p.add_argument("--dtype", choices=DTYPES, default="float16")
    add_threshold_args(p)
    p.set_defaults(handler=_publish)
    for name, action, text in (
        ("wipe", Action.WIPE, "wipe the watchlist now (signed command + clear retained)"),
        ("pause", Action.PAUSE, "stop matching (the camera keeps running)"),
        ("resume", Action.RESUME, "start matching again"),
    ):
        p = sub.add_parser(name, help=text)
        _target_args(p)
        p.set_defaults(handler=_command(action))

    p = sub.add_parser("status", help="fleet table from the devices' retained status")
    _broker_args(p)
    p.add_argument("--registry", type=Path, metavar="REG", help="default: the authority's")
    p.add_argument(
        "--state", type=Path, metavar="FILE", help="ops state (versions, counters) to check"
    )
    p.add_argument("--site")
    p.add_argument("--wait", type=float, default=2.0, help="seconds to collect (default 2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_status)
    return parser


def _signing_parsers(sub: Any) -> None:
    """Two people, two workstations: sign a file made elsewhere, make a command file, send."""
    p = sub.add_parser(
        "sign", help="add one signature to a bundle or command file (shows it, asks first)"
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--key", type=Path, required=True, metavar="KEYFILE")
    p.add_argument(
        "--authority", type=Path, metavar="DIR", help="check the key is one of its ops keys"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="default: FILE itself")
    p.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    _audit_arg(p)
    p.set_defaults(handler=_sign)

    p = sub.add_parser(
        "command", help="make a command file (wipe, pause, resume) to sign elsewhere and send"
    )
    p.add_argument("action", choices=[a.value for a in Action])
    p.add_argument("--device", required=True, metavar="ID")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--registry", type=Path, metavar="REG", help="default: the authority's")
    p.add_argument("--state", type=Path, metavar="FILE", help="default: the authority's")
    p.add_argument("--sign-with", "--sign", type=Path, action="append", metavar="KEYFILE")
    p.add_argument(
        "--valid",
        type=parse_duration,
        default=MAX_VALIDITY,
        metavar="DURATION",
        help="how long devices accept it: every signature must be added and the file sent "
        f"within it (at most and default {MAX_VALIDITY})",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    _audit_arg(p)
    p.set_defaults(handler=_make_command)

    p = sub.add_parser(
        "send", help="push a signed bundle or command file to its device (threshold checked)"
    )
    p.add_argument("file", type=Path, metavar="FILE")
    _broker_args(p)
    p.add_argument("--registry", type=Path, metavar="REG", help="default: the authority's")
    p.add_argument("--state", type=Path, metavar="FILE", help="default: the authority's")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")
    _audit_arg(p)
    p.set_defaults(handler=_send)


def _audit_arg(p: argparse.ArgumentParser, *, state: bool = False) -> None:
    if state:
        p.add_argument("--state", type=Path, metavar="FILE", help="default: the authority's")
    p.add_argument(
        "--audit",
        type=Path,
        metavar="FILE",
        help="append-only signing audit log (JSON lines; default: signing-audit.jsonl in the "
        f"authority directory, or {DEFAULT_PATH} without --authority)",
    )


def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--broker",
        type=host_port,
        metavar="HOST:PORT",
        help="default: the address broker-config recorded",
    )
    p.add_argument(
        "--client-cert",
        type=Path,
        required=True,
        metavar="CERT",
        help="an ops client certificate (lfr-provision issue-client --role ops)",
    )
    p.add_argument("--client-key", type=Path, metavar="KEY", help="default: CERT with .key")
    p.add_argument("--ca", type=Path, metavar="CA", help="default: the authority's ca.crt")


def _target_args(p: argparse.ArgumentParser) -> None:
    _broker_args(p)
    p.add_argument("--registry", type=Path, metavar="REG", help="default: the authority's")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--devices", metavar="ID,...")
    group.add_argument("--site")
    p.add_argument("--sign-with", type=Path, action="append", required=True, metavar="KEYFILE")
    p.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="ops state (versions, counters); default: the authority's",
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
