"""``lfr-provision``: the authority (ops), device enrolment (technician), the broker config."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lfrkit.console import EXIT_OK, UsageError, host_port, run
from provisioning.approve import approve
from provisioning.authority import Authority, init_authority
from provisioning.broker_cli import broker_commands, update_broker
from provisioning.device import device_init, device_install
from provisioning.fleet import issue_client, renew
from provisioning.quickstart import quickstart
from provisioning.registry import CLIENT_ROLES
from provisioning.sealing import CREDSTORE, DROPIN, WITH_KEY, seal_keys

PROG = "lfr-provision"


def _now() -> datetime:
    return datetime.now(UTC)


def _init_authority(args: argparse.Namespace) -> int:
    authority = init_authority(args.out, args.ops_keys, args.threshold, _now(), force=args.force)
    print(
        f"authority created in {authority.root}: {len(authority.policy.ops_keys)} ops keys, "
        f"threshold {authority.policy.threshold}"
    )
    for kid in authority.policy.ops_keys:
        print(f"  ops key {kid}")
    print(f"  CA certificate {authority.ca_cert_path} (keep ca.key offline when not approving)")
    return EXIT_OK


def _device_init(args: argparse.Namespace) -> int:
    request, created = device_init(args.id, args.site, args.state, _now(), force=args.force)
    if created:
        print(f"device {args.id}@{args.site}: keys created in {Path(args.state) / 'keys'} (0600)")
    else:
        print(f"device {args.id}@{args.site}: already initialised in {args.state}; unchanged")
    print(f"give {request} to ops for approval (it holds public keys only)")
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    approval = approve(args.request, args.authority, args.out, _now(), broker=args.broker)
    update_broker(args.authority)
    record = approval.record
    verb = "already approved" if approval.reused else "approved"
    print(
        f"{verb} {record.device_id}@{record.site}: certificate "
        f"{record.cert_fingerprint_sha256[:16]}… valid until {record.cert_not_after}"
    )
    print(f"install bundle written to {args.out} (device.crt, ca.crt, trust.json)")
    return EXIT_OK


def _device_install(args: argparse.Namespace) -> int:
    done = device_install(
        args.bundle, args.state, config=args.config, broker=args.broker, force=args.force
    )
    trust = done.trust
    state = "installed" if done.changed else "already installed; unchanged"
    print(
        f"{state}: {trust.device_id}@{trust.site}, {len(trust.policy.ops_keys)} pinned ops "
        f"keys, threshold {trust.policy.threshold}"
    )
    if done.config is not None:
        print(f"agent config: {done.config}; next: lfr-agent check --config {done.config}")
    return EXIT_OK


def _renew(args: argparse.Namespace) -> int:
    record = renew(args.authority, args.id, args.out, _now())
    print(
        f"renewed {record.device_id}: valid until {record.cert_not_after}; install "
        f"{args.out} on the device with lfr-provision device-install"
    )
    return EXIT_OK


def _issue_client(args: argparse.Namespace) -> int:
    record = issue_client(args.authority, args.role, args.name, args.out, _now())
    update_broker(args.authority)
    print(
        f"{record.role} client {record.name}: {args.out}/{record.name}.crt and .key "
        f"(valid until {record.cert_not_after})"
    )
    return EXIT_OK


def _page_cert(args: argparse.Namespace) -> int:
    from provisioning.page import check_host, issue_page_cert

    cert = issue_page_cert(args.authority, args.host, args.out, _now())
    names = dict.fromkeys(check_host(h) for h in args.host)
    print(
        f"officers' page certificate for {', '.join(names)}: {args.out}/page.crt and "
        f"page.key (0600), valid until {cert.not_valid_after_utc:%Y-%m-%d}; browsers trust "
        f"it through {args.out}/ca.crt"
    )
    print(f"serve: lfr-alerts serve --tls-cert {args.out}/page.crt ...")
    return EXIT_OK


def _quickstart(args: argparse.Namespace) -> int:
    index = quickstart(args.dir, args.devices, _now(), port=args.port, site=args.site)
    print(
        f"quickstart ready in {Path(args.dir).resolve()}: {len(index['devices'])} device(s), "
        f"broker {index['broker']['host']}:{index['broker']['port']}"
    )
    print(f"index: {Path(args.dir).resolve() / 'quickstart.json'}")
    print(f"start the broker: mosquitto -c {index['broker']['config']}")
    return EXIT_OK


def _registry_list(args: argparse.Namespace) -> int:
    registry = Authority.load(args.authority).registry() if args.authority else None
    if registry is None:
        raise UsageError("pass --authority DIR")
    rows = [
        {
            "id": d.device_id,
            "kind": "device",
            "site": d.site,
            "status": d.status,
            "cert_not_after": d.cert_not_after,
        }
        for d in registry.devices.values()
    ]
    rows += [
        {
            "id": c.name,
            "kind": f"client:{c.role}",
            "site": "-",
            "status": c.status,
            "cert_not_after": c.cert_not_after,
        }
        for c in registry.clients.values()
    ]
    rows.sort(key=lambda r: (r["kind"], r["site"], r["id"]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = ("ID", "KIND", "SITE", "STATUS", "CERT EXPIRES")
    table = [
        header,
        *[(r["id"], r["kind"], r["site"], r["status"], r["cert_not_after"]) for r in rows],
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return EXIT_OK


def _enrolment_commands(sub: Any) -> None:
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
    p.add_argument("--force", action="store_true", help="archive an existing authority")
    p.set_defaults(handler=_init_authority)

    p = sub.add_parser(
        "device-init", help="create this device's keys and enrolment request (on the device)"
    )
    p.add_argument("--id", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--force", action="store_true", help="archive an existing identity and create a new one"
    )
    p.set_defaults(handler=_device_init)

    p = sub.add_parser(
        "approve", help="verify a request, issue the device certificate, record the device (ops)"
    )
    p.add_argument("request", type=Path, metavar="REQUEST")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR")
    p.add_argument(
        "--broker",
        type=host_port,
        metavar="HOST:PORT",
        help="broker address for the device (default: from broker-config)",
    )
    p.set_defaults(handler=_approve)

    p = sub.add_parser("device-install", help="install what ops approved (on the device)")
    p.add_argument("bundle", type=Path, metavar="BUNDLE_DIR")
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="write the agent config here (e.g. /etc/lfr-agent/agent.toml)",
    )
    p.add_argument(
        "--broker",
        type=host_port,
        metavar="HOST:PORT",
        help="broker address (default: the bundle's broker.json)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="archive a different existing CA/config and replace it (never the pinned ops "
        "keys: those change only by a signed trust.jws)",
    )
    p.set_defaults(handler=_device_install)


def _fleet_commands(sub: Any) -> None:
    broker_commands(sub)

    p = sub.add_parser("renew", help="a new certificate for a device's existing key")
    p.add_argument("id", metavar="ID")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR")
    p.set_defaults(handler=_renew)

    p = sub.add_parser("issue-client", help="certificate for an ops or alerts client")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=CLIENT_ROLES, required=True)
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_issue_client)

    p = sub.add_parser(
        "page-cert", help="TLS certificate for the officers' page (lfr-alerts serve)"
    )
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="NAME",
        help="DNS name or IP officers use to reach the page (repeatable; the SAN)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_page_cert)

    p = sub.add_parser(
        "quickstart",
        help="authority + N devices + clients + broker config on one host (demos, tests)",
    )
    p.add_argument("--dir", type=Path, required=True, metavar="DIR")
    p.add_argument("--devices", type=int, default=1, metavar="N")
    p.add_argument("--port", type=int, metavar="P", help="broker port (default: a free one)")
    p.add_argument("--site", default="demo")
    p.set_defaults(handler=_quickstart)

    p = sub.add_parser("registry", help="the fleet registry")
    reg = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    q = reg.add_parser("list", help="devices and clients: id, site, status, cert expiry")
    q.add_argument("--authority", type=Path, required=True, metavar="DIR")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=_registry_list)


def _new_ops_key(args: argparse.Namespace) -> int:
    from provisioning.rotation import new_ops_key

    pub, kid = new_ops_key(args.out)
    print(f"ops key {kid}: {args.out} (0600, keep it on its holder's workstation), public {pub}")
    return EXIT_OK


def _rotate_trust(args: argparse.Namespace) -> int:
    from provisioning.rotation import rotate_trust

    done = rotate_trust(
        args.authority,
        ops_public=args.ops_pub,
        threshold=args.threshold,
        signers=args.sign,
        out=args.out,
        adjudication_public=args.adjudication_pub,
    )
    print(
        f"trust serial {done.serial}: {len(done.policy.ops_keys)} ops keys, threshold "
        f"{done.policy.threshold}; authority.json updated"
    )
    print(
        f"{len(done.bundles)} rotation bundle(s) in {args.out}/DEVICE: install each with "
        "lfr-provision device-install, restart the agent, then publish watchlists signed "
        "by the new keys"
    )
    return EXIT_OK


def _seal_keys(args: argparse.Namespace) -> int:
    done = seal_keys(
        args.state,
        args.out,
        dropin=args.dropin,
        with_key=args.with_key,
        remove_plain=args.remove_plain,
    )
    print(f"{len(done.credentials)} keys sealed with systemd-creds into {args.out}")
    print(
        f"service drop-in: {done.dropin}; next: systemctl daemon-reload && "
        "systemctl restart lfr-agent"
    )
    if done.removed:
        print(f"plain key files removed: {', '.join(p.name for p in done.removed)}")
    else:
        print(
            "the plain key files are still in the state dir: --remove-plain once the service runs"
        )
    return EXIT_OK


def _push_rotation(args: argparse.Namespace) -> int:
    from lfrkit.mqtt import MqttSettings
    from provisioning.rotation import push_rotations

    authority = Authority.load(args.authority)
    broker = args.broker or authority.broker()
    if broker is None:
        raise UsageError("no broker address: pass --broker HOST:PORT")
    key = args.client_key or args.client_cert.with_suffix(".key")
    settings = MqttSettings(
        broker[0], broker[1], args.ca or authority.ca_cert_path, args.client_cert, key
    )
    devices = [d for d in (args.devices or "").split(",") if d] or None
    results = push_rotations(args.rotation, settings, devices)
    refused = [device for device, code in results if code >= 128]
    for device, code in results:
        print(f"{device}: {'refused by the broker' if code >= 128 else 'sent'} (PUBACK {code})")
    print(
        "each node verifies it against its pinned keys and restarts to apply it; "
        "device-install the same bundle on a node that was offline"
    )
    if refused:
        raise UsageError(f"the broker refused the rotation for {', '.join(refused)}")
    return EXIT_OK


def _trust_commands(sub: Any) -> None:
    p = sub.add_parser(
        "seal-keys", help="seal this node's private keys with systemd-creds (on the device)"
    )
    p.add_argument("--state", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--out",
        type=Path,
        default=CREDSTORE,
        metavar="DIR",
        help="where the sealed credentials go (default /etc/credstore.encrypted/lfr-agent)",
    )
    p.add_argument(
        "--dropin",
        type=Path,
        default=DROPIN,
        metavar="FILE",
        help="the unit drop-in with LoadCredentialEncrypted= lines",
    )
    p.add_argument(
        "--with-key",
        default="auto",
        choices=WITH_KEY,
        help="systemd-creds --with-key (default auto: TPM2 where present, else the host key)",
    )
    p.add_argument(
        "--remove-plain",
        action="store_true",
        help="delete the plain key files after every credential decrypted correctly",
    )
    p.set_defaults(handler=_seal_keys)

    p = sub.add_parser("ops-key", help="create a new ops signing key (for a trust rotation)")
    p.add_argument("--out", type=Path, required=True, metavar="KEY_FILE")
    p.set_defaults(handler=_new_ops_key)

    p = sub.add_parser(
        "rotate-trust",
        help="change the pinned ops keys/threshold/adjudication key, signed by the current keys",
    )
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--ops-pub",
        type=Path,
        action="append",
        required=True,
        metavar="PUB",
        help="an ops public key devices pin after the rotation (repeat for each)",
    )
    p.add_argument("--threshold", type=int, required=True, metavar="K")
    p.add_argument(
        "--adjudication-pub",
        type=Path,
        metavar="PUB",
        help="a new control-room HPKE public key (default: keep the current one)",
    )
    p.add_argument(
        "--sign",
        type=Path,
        action="append",
        required=True,
        metavar="OPS_KEY",
        help="a currently pinned ops private key (repeat until the current threshold)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_rotate_trust)

    p = sub.add_parser(
        "push-rotation", help="send rotate-trust's signed trust.jws to each node over MQTT"
    )
    p.add_argument("rotation", type=Path, metavar="ROTATION_DIR")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--devices", metavar="ID,...", help="default: every device in the directory")
    p.add_argument("--broker", type=host_port, metavar="HOST:PORT")
    p.add_argument(
        "--client-cert",
        type=Path,
        required=True,
        metavar="CERT",
        help="an ops client certificate (issue-client --role ops)",
    )
    p.add_argument("--client-key", type=Path, metavar="KEY", help="default: CERT with .key")
    p.add_argument("--ca", type=Path, metavar="CA", help="default: the authority's ca.crt")
    p.set_defaults(handler=_push_rotation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _enrolment_commands(sub)
    _fleet_commands(sub)
    _trust_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
