"""Ops over MQTT: push sealed watchlists, send signed commands, read the fleet's status.

Versions and command counters must rise per device. The next one is the larger of what the
ops state file remembers and the floor the device itself reports in its retained status, so a
lost state file or a second ops workstation does not produce bundles every device refuses.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, read_bounded
from lfrkit.mqtt import MqttLink
from protocol import hpke
from protocol.command import Action, Command, sign_command
from protocol.encoding import canonical_json, format_time, parse_json_object
from protocol.entries import Entries
from protocol.errors import RejectedInput
from protocol.status import DeviceStatus, State, WatchlistReport, parse_status
from protocol.topics import Kind, device_topic
from protocol.watchlist import MatchThreshold, seal_bundle
from provisioning.registry import DeviceRecord, Registry

log = logging.getLogger(__name__)
Signers = Sequence[tuple[ed25519.Ed25519PrivateKey, str]]


def topic(device: DeviceRecord, kind: Kind) -> str:
    return device_topic(device.site, device.device_id, kind)


def select_devices(
    registry: Registry, ids: list[str] | None, site: str | None
) -> list[DeviceRecord]:
    if ids:
        devices = [registry.get(i) for i in ids]
    elif site:
        devices = registry.at_site(site)
        if not devices:
            raise UsageError(f"no enrolled device at site {site!r}")
    else:
        raise UsageError("say which devices: --devices ID,... or --site SITE")
    revoked = [d.device_id for d in devices if d.status != "active"]
    if revoked:
        raise UsageError(f"device {revoked[0]} is revoked")
    return devices


class OpsState:
    """What this workstation last sent each device (``ops-state.json``, written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, int]] = {}
        if path.exists():
            doc = parse_json_object(read_bounded(path, 16 << 20, "ops state"), str(path), 16 << 20)
            devices = doc.get("devices", {})
            if not isinstance(devices, dict):
                raise UsageError(f"{path}: 'devices' must be an object")
            self.data = {
                str(k): {kk: int(vv) for kk, vv in v.items()}
                for k, v in devices.items()
                if isinstance(v, dict)
            }

    def get(self, device: str, key: str) -> int:
        return self.data.get(device, {}).get(key, 0)

    def set(self, device: str, key: str, value: int) -> None:
        self.data.setdefault(device, {})[key] = value
        atomic_write(self.path, canonical_json({"devices": self.data}) + b"\n", 0o600)


def read_statuses(
    link: MqttLink, devices: list[DeviceRecord], seconds: float = 1.5
) -> dict[str, DeviceStatus]:
    """Retained status documents of ``devices`` (those that ever reported)."""
    link.subscribe([(topic(d, Kind.STATUS), 1) for d in devices])
    return collect_statuses(link, seconds)


def collect_statuses(link: MqttLink, seconds: float) -> dict[str, DeviceStatus]:
    """Status documents arriving within ``seconds``, by device (the one in the topic)."""
    found: dict[str, DeviceStatus] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = link.receive(min(left, 0.2))
        if message is None or not message.payload:
            continue
        try:
            found[message.topic.split("/")[3]] = parse_status(message.payload)
        except RejectedInput as exc:
            log.warning("status on %s skipped (%s): %s", message.topic, exc.reason, exc)
    return found


def _watchlist(status: DeviceStatus | None) -> WatchlistReport | None:
    """The watchlist part of a status (None: no status, or the last will)."""
    return None if status is None or status.report is None else status.report.watchlist


@dataclass
class Outcome:
    device: str
    wanted: int
    result: str = "pending"  # applied | rejected (reason) | offline | pending
    sent_at: datetime | None = None


def _installed(status: DeviceStatus, outcome: Outcome) -> bool:
    watchlist = _watchlist(status)
    return watchlist is not None and watchlist.version == outcome.wanted


def _outcome(status: DeviceStatus | None, outcome: Outcome, what: str, applied: bool) -> str:
    if status is None:
        return "pending"
    if applied:
        return "applied"
    watchlist = _watchlist(status)
    rejection = None if watchlist is None else watchlist.last_rejection
    if (
        rejection is not None
        and rejection.what == what
        and outcome.sent_at is not None
        and rejection.at >= outcome.sent_at - timedelta(seconds=1)
    ):
        return f"rejected ({rejection.reason})"
    if status.state is State.OFFLINE:
        return "offline"
    return "pending"


def wait_for(
    link: MqttLink,
    outcomes: list[Outcome],
    statuses: dict[str, DeviceStatus],
    *,
    what: str,
    done: Callable[[DeviceStatus, Outcome], bool],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for item in outcomes:
            status = statuses.get(item.device)
            item.result = _outcome(status, item, what, status is not None and done(status, item))
        settled = [o for o in outcomes if o.result not in ("pending", "offline")]
        left = deadline - time.monotonic()
        print(
            f"\rwaiting for devices: {len(settled)}/{len(outcomes)} answered "
            f"({max(0, int(left))}s left) ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if len(settled) == len(outcomes) or left <= 0:
            break
        statuses.update(collect_statuses(link, min(left, 0.5)))
    print(file=sys.stderr)
    for item in outcomes:
        if item.result == "pending":
            item.result = (
                "offline"
                if item.device not in statuses or statuses[item.device].state is State.OFFLINE
                else "no answer"
            )


def publish_watchlists(
    link: MqttLink,
    devices: list[DeviceRecord],
    entries: Entries,
    signers: Signers,
    state: OpsState,
    *,
    expires: timedelta,
    deployment: str,
    threshold: MatchThreshold,
    suite: str = hpke.DEFAULT_SUITE,
    dtype: str = "float16",
    timeout: float = 60.0,
) -> list[Outcome]:
    statuses = read_statuses(link, devices)
    outcomes = []
    for device in devices:
        reported = _watchlist(statuses.get(device.device_id))
        floor = 0 if reported is None else reported.version_floor
        version = max(state.get(device.device_id, "watchlist_version"), floor) + 1
        now = datetime.now(UTC).replace(microsecond=0)
        bundle = seal_bundle(
            entries,
            device_id=device.device_id,
            site=device.site,
            deployment_id=deployment,
            version=version,
            issued_at=now,
            expires_at=now + expires,
            recipient=device.hpke_key(suite),
            signers=signers,
            threshold=threshold,
            suite=suite,
            dtype=dtype,
        )
        code = link.wait_ack(link.publish(topic(device, Kind.WATCHLIST), bundle, retain=True))
        if code >= 0x80:
            raise UsageError(
                f"the broker refused the watchlist for {device.device_id} "
                f"(reason {code:#x}): is this client an ops client?"
            )
        state.set(device.device_id, "watchlist_version", version)
        outcomes.append(Outcome(device.device_id, version, sent_at=now))
    wait_for(
        link,
        outcomes,
        statuses,
        what="watchlist",
        timeout=timeout,
        done=_installed,
    )
    return outcomes


def send_command(
    link: MqttLink,
    devices: list[DeviceRecord],
    action: Action,
    signers: Signers,
    state: OpsState,
    *,
    timeout: float = 30.0,
    validity: timedelta = timedelta(minutes=30),
) -> list[Outcome]:
    statuses = read_statuses(link, devices)
    outcomes = []
    for device in devices:
        reported = _watchlist(statuses.get(device.device_id))
        floor = 0 if reported is None else reported.command_counter
        counter = max(state.get(device.device_id, "command_counter"), floor) + 1
        now = datetime.now(UTC).replace(microsecond=0)
        signed = sign_command(
            Command(device.device_id, device.site, action, counter, now, now + validity), signers
        )
        # Retained: a device that is offline now gets it when it reconnects (within its
        # validity); the device treats a repeat of the last command it ran as done.
        code = link.wait_ack(link.publish(topic(device, Kind.COMMAND), signed, retain=True))
        if code >= 0x80:
            raise UsageError(
                f"the broker refused the command for {device.device_id} (reason {code:#x})"
            )
        if action is Action.WIPE:
            link.wait_ack(link.publish(topic(device, Kind.WATCHLIST), b"", retain=True))
        state.set(device.device_id, "command_counter", counter)
        outcomes.append(Outcome(device.device_id, counter, sent_at=now))

    def done(status: DeviceStatus, outcome: Outcome) -> bool:
        watchlist = _watchlist(status)
        if watchlist is None or watchlist.command_counter < outcome.wanted:
            return False
        if action is Action.WIPE:
            return watchlist.version is None
        return status.state is (State.PAUSED if action is Action.PAUSE else State.ONLINE)

    wait_for(link, outcomes, statuses, what="command", done=done, timeout=timeout)
    return outcomes


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def fleet_rows(statuses: dict[str, DeviceStatus]) -> list[list[str]]:
    rows = [
        [
            "DEVICE",
            "SITE",
            "STATE",
            "WATCHLIST",
            "EXPIRES",
            "FPS",
            "FACES",
            "DISCARDED",
            "MATCHES",
            "QUEUED",
            "ALARMS",
        ]
    ]
    for device, status in sorted(statuses.items()):
        head = [device, status.site, status.state.value]
        report = status.report
        if report is None:  # the last will: nothing but the state
            rows.append([*head, "none", *["-"] * 7])
            continue
        wl = report.watchlist
        rows.append(
            [
                *head,
                f"v{wl.version}" if wl.version else wl.note,
                "-" if wl.expires_at is None else format_time(wl.expires_at),
                str(report.fps),
                str(report.frames.faces_detected),
                str(report.frames.faces_discarded),
                str(report.frames.matches),
                str(report.events.events_queued),
                "; ".join(report.alarms) or "-",
            ]
        )
    return rows
