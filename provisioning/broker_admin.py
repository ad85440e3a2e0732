"""The broker-admin client: applies registry changes to a running Mosquitto over
``$CONTROL/dynamic-security/v1``, so approve and issue-client take effect at once and a
revoked identity is cut off without a restart (docs/broker.md).

Its certificate (CN ``broker-admin``, role ``broker-admin``: ``$CONTROL/dynamic-security/#``
and nothing else) lives in the authority, made by ``broker-config``; it is in the registry
like any client, so it can be revoked. Every sync sends the whole policy: creating what the
broker already has is answered "already exists" and ignored, so a missed sync heals at the
next one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lfrkit.console import UsageError
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning.authority import Authority
from provisioning.brokers.mosquitto_dynsec import (
    CONTROL_TOPIC,
    RESPONSE_TOPIC,
    failed_responses,
    sync_commands,
)
from provisioning.fleet import issue_client
from provisioning.policy import access_policy

log = logging.getLogger(__name__)
ADMIN = "broker-admin"  # its CN, client name and role
MAX_RESPONSE_BYTES = 16 << 20


def admin_dir(authority: Authority) -> Path:
    return authority.root / ADMIN


def ensure_admin(authority_dir: Path, now: datetime) -> None:
    """Issue the broker-admin client once (kept on later runs)."""
    authority = Authority.load(authority_dir)
    issue_client(authority_dir, ADMIN, ADMIN, admin_dir(authority), now)


def share_group(authority: Authority) -> str:
    """The control room's group as broker-config recorded it."""
    info = authority.broker_info()
    return (info.share_group if info else None) or DEFAULT_SHARE_GROUP


@dataclass(frozen=True)
class SyncResult:
    commands: int
    seconds: float


class SyncError(Exception):
    """The running broker was not reached or refused a change; the files are still right
    and take effect at its next start."""


def sync(authority: Authority, timeout: float = 10.0) -> SyncResult:
    """Bring the running broker's dynamic-security state in line with the registry."""
    from lfrkit.mqtt import MqttError, MqttLink, MqttSettings

    broker = authority.broker()
    folder = admin_dir(authority)
    cert, key = folder / f"{ADMIN}.crt", folder / f"{ADMIN}.key"
    if broker is None or not cert.exists():
        raise UsageError("no broker-admin client on record: run lfr-provision broker-config")
    commands = sync_commands(access_policy(authority.registry(), share_group(authority)))
    started = time.monotonic()
    link = MqttLink(
        MqttSettings(broker[0], broker[1], authority.ca_cert_path, cert, key, client_id=ADMIN)
    )
    try:
        link.connect(timeout=timeout)
    except MqttError as exc:
        raise SyncError(f"broker not reached: {exc}") from None
    try:
        if link.subscribe([(RESPONSE_TOPIC, 1)], timeout)[0] >= 0x80:
            raise SyncError(f"the broker refused {ADMIN} the subscription to {RESPONSE_TOPIC}")
        code = link.wait_ack(
            link.publish(CONTROL_TOPIC, json.dumps({"commands": commands}).encode()), timeout
        )
        if code >= 0x80:
            raise SyncError(f"the broker refused {ADMIN}'s commands (PUBACK {code:#x})")
        message = link.receive(timeout)
        if message is None:
            raise SyncError(f"no answer on {RESPONSE_TOPIC} within {timeout:.0f}s")
        if len(message.payload) > MAX_RESPONSE_BYTES:
            raise SyncError("the broker's answer is too large")
        errors = failed_responses(message.payload)
        if errors:
            raise SyncError(f"the broker refused: {'; '.join(errors[:3])}")
    except MqttError as exc:
        raise SyncError(str(exc)) from None
    finally:
        link.close()
    seconds = time.monotonic() - started
    log.info("broker synced: %d commands in %.2f s", len(commands), seconds)
    return SyncResult(len(commands), seconds)
