"""``lfr-provision`` broker commands: broker-config, broker-acl, revoke, crl-renew, and the
live update of a running broker after approve and issue-client (docs/broker.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lfrkit.console import EXIT_OK, host_port
from lfrkit.files import atomic_write
from protocol.encoding import format_time
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning.authority import Authority
from provisioning.broker import CRL_RENEW_BEFORE, broker_config, refresh, renew_crl
from provisioning.broker_admin import SyncError, share_group, sync
from provisioning.brokers import emqx, mosquitto, mosquitto_dynsec
from provisioning.fleet import revoke
from provisioning.policy import IdentityAccess, access_policy


def _now() -> datetime:
    return datetime.now(UTC)


def update_broker(authority_dir: Path, now: datetime | None = None) -> bool:
    """After a registry change: rewrite the policy and CRL files, then apply the policy to
    the running broker over $CONTROL (True when it did). A broker that is down picks the
    files up at start."""
    authority = Authority.load(authority_dir)
    out = refresh(authority, now or _now())
    if out is None:
        print("no broker config on record: run broker-config to publish the CRL and policy")
        return False
    try:
        done = sync(authority)
    except SyncError as exc:
        print(
            f"WARNING: policy and CRL written to {out} but not applied live ({exc}); they "
            "take effect when the broker starts",
            file=sys.stderr,
        )
        return False
    print(
        f"policy and CRL regenerated in {out}; broker updated live ({done.commands} "
        f"commands, {done.seconds:.2f} s)"
    )
    return True


def _broker_config(args: argparse.Namespace) -> int:
    host, port = args.listen
    files = broker_config(
        args.authority,
        args.out,
        host=args.host or host,
        port=port,
        bind=host,
        now=_now(),
        user=args.user,
        extra_hosts=tuple(args.san),
        group=args.share_group,
        plugin=args.plugin,
    )
    print(
        f"broker config written: {files.config} (dynamic-security policy {files.policy}, "
        f"CRL {files.crl}); alerts may share only group {files.share_group!r}"
    )
    print(f"run: mosquitto -c {files.config} (restart a running broker to load the policy)")
    return EXIT_OK


# The access policy in each broker's syntax (docs/broker.md).
ACL_RENDERERS: dict[str, Callable[[Sequence[IdentityAccess]], str]] = {
    "mosquitto-dynsec": mosquitto_dynsec.render_dynsec,
    "mosquitto-acl": mosquitto.render_acl,
    "emqx": emqx.render_acl,
}


def _broker_acl(args: argparse.Namespace) -> int:
    authority = Authority.load(args.authority)
    policy = access_policy(authority.registry(), share_group(authority))
    text = ACL_RENDERERS[args.flavour](policy)
    if args.out is None:
        print(text, end="")
        return EXIT_OK
    atomic_write(args.out, text.encode(), 0o644)
    active = sum(identity.active for identity in policy)
    print(f"{args.flavour} policy written to {args.out}: {active} of {len(policy)} active")
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    now = _now()
    kind = revoke(args.authority, args.id, now)
    print(f"{kind} {args.id} revoked in the registry; consumers stop trusting its events")
    if update_broker(args.authority, now):
        print(
            "the broker deleted its client: it is disconnected and refused everything now; "
            "reload the broker (systemctl reload mosquitto) so the CRL refuses its TLS "
            "handshake too"
        )
    return EXIT_OK


def _crl_renew(args: argparse.Namespace) -> int:
    done = renew_crl(Authority.load(args.authority), _now(), timedelta(days=args.before_days))
    if done.renewed:
        print(
            f"CRL re-issued ({done.reason}): {done.path}, next update "
            f"{format_time(done.next_update)}; reload the broker (systemctl reload mosquitto)"
        )
    else:
        print(f"CRL current: {done.path}, next update {format_time(done.next_update)}")
    return EXIT_OK


def broker_commands(sub: Any) -> None:
    p = sub.add_parser(
        "broker-config", help="write mosquitto.conf, the dynamic-security policy, CRL, TLS files"
    )
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--listen",
        type=host_port,
        default=("0.0.0.0", 8883),  # noqa: S104
        metavar="ADDR:PORT",
        help="listener (default 0.0.0.0:8883)",
    )
    p.add_argument("--host", help="name devices use to reach the broker (in its certificate)")
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="extra DNS name or IP in the broker certificate",
    )
    p.add_argument(
        "--user",
        default="mosquitto",
        help="user the broker drops to when started as root (default mosquitto)",
    )
    p.add_argument(
        "--share-group",
        default=DEFAULT_SHARE_GROUP,
        metavar="NAME",
        help="the only shared-subscription group the alerts role may join (default "
        f"{DEFAULT_SHARE_GROUP}; lfr-alerts listen --group must match)",
    )
    p.add_argument(
        "--plugin",
        type=Path,
        metavar="PATH",
        help="mosquitto_dynamic_security.so on the broker host (default: found on this one)",
    )
    p.set_defaults(handler=_broker_config)

    p = sub.add_parser(
        "broker-acl",
        help="the access policy from the registry as dynsec JSON, a Mosquitto acl_file or an "
        "EMQX acl.conf",
    )
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument("--flavour", choices=sorted(ACL_RENDERERS), default="mosquitto-dynsec")
    p.add_argument("--out", type=Path, metavar="FILE", help="write it here (default: stdout)")
    p.set_defaults(handler=_broker_acl)

    p = sub.add_parser("revoke", help="revoke a device or client; cut it off the broker live")
    p.add_argument("id", metavar="ID")
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=_revoke)

    p = sub.add_parser(
        "crl-renew", help="re-issue the broker's CRL if it expires soon (daily timer)"
    )
    p.add_argument("--authority", type=Path, required=True, metavar="DIR")
    p.add_argument(
        "--before-days",
        type=int,
        default=CRL_RENEW_BEFORE.days,
        metavar="N",
        help=f"re-issue when it expires within N days (default {CRL_RENEW_BEFORE.days})",
    )
    p.set_defaults(handler=_crl_renew)
