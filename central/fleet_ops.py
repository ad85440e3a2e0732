"""Ops over MQTT: push sealed watchlists, send signed commands, read the fleet's status.

Versions and command counters must rise per device. Ops own them: the next one comes from the
ops state file alone (``ops-state.json``, written atomically, reserved before anything is
published), never from a device's status (issue 17 finding 2): a status is the device's
claim, and a floor above anything ops ever issued is an alarm, not a number to sign. Status
documents are read only when signed by the device of their topic (finding 1).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from lfrkit.console import UsageError
from lfrkit.files import atomic_write, read_bounded
from lfrkit.mqtt import MqttError, MqttLink
from protocol import hpke
from protocol.command import Action, Command, sign_command
from protocol.encoding import Fields, canonical_json, format_time, parse_json_object
from protocol.entries import Entries
from protocol.errors import RejectedInput
from protocol.status import DeviceStatus, State, WatchlistReport, verify_status
from protocol.topics import Kind, device_topic, parse_topic
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


_COUNTERS = ("watchlist_version", "command_counter")
_MAX_COUNTER = 2**53 - 1  # what devices accept


class OpsState:
    """What this workstation last issued each device (``ops-state.json``, written atomically):
    the source of every version and counter it signs. A corrupt file is refused, never read
    as zero (zero would re-issue numbers the devices already hold)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, int]] = {}
        if path.exists():
            what = str(path)
            try:
                doc = Fields(
                    parse_json_object(read_bounded(path, 16 << 20, "ops state"), what, 16 << 20),
                    what,
                    allowed=frozenset({"devices"}),
                )
                devices = doc.sub("devices")
                for device in devices.names():
                    counters = devices.sub(device, allowed=frozenset(_COUNTERS))
                    self.data[device] = {
                        key: counters.integer(key, 0, _MAX_COUNTER)
                        for key in _COUNTERS
                        if counters.has(key)
                    }
            except RejectedInput as exc:
                raise UsageError(f"ops state {exc}") from None

    def get(self, device: str, key: str) -> int:
        return self.data.get(device, {}).get(key, 0)

    def reserve(self, device: str, key: str) -> int:
        """The next ``key`` for ``device``, saved before it is used: a crash after publishing
        can never make ops sign the same number twice (a device would take a repeated command
        counter as already applied)."""
        value = self.get(device, key) + 1
        if value > _MAX_COUNTER:
            raise UsageError(f"{device}: {key} is exhausted in {self.path}")
        self.set(device, key, value)
        return value

    def set(self, device: str, key: str, value: int) -> None:
        self.data.setdefault(device, {})[key] = value
        atomic_write(self.path, canonical_json({"devices": self.data}) + b"\n", 0o600)

    def alarms(self, device: str, status: DeviceStatus | None) -> list[str]:
        """What a device's status claims beyond anything ops issued it (never adopted)."""
        watchlist = _watchlist(status)
        if watchlist is None:
            return []
        found = []
        for key, claimed in (
            ("watchlist_version", watchlist.version_floor),
            ("command_counter", watchlist.command_counter),
        ):
            issued = self.get(device, key)
            if claimed > issued:
                found.append(
                    f"ALARM {key} floor {claimed} above the {issued} ops issued "
                    "(another signer, or a lost ops state: investigate before publishing)"
                )
        return found


def device_keys(devices: Sequence[DeviceRecord]) -> dict[str, ed25519.Ed25519PublicKey]:
    """The registered signing keys of ``devices``: whose status documents are believed."""
    return {d.device_id: d.signing_key() for d in devices}


def read_statuses(
    link: MqttLink, devices: list[DeviceRecord], seconds: float = 1.5
) -> dict[str, DeviceStatus]:
    """Retained status documents of ``devices`` (those that ever reported)."""
    link.subscribe([(topic(d, Kind.STATUS), 1) for d in devices])
    return collect_statuses(link, seconds, device_keys(devices))


def collect_statuses(
    link: MqttLink,
    seconds: float,
    keys: Mapping[str, ed25519.Ed25519PublicKey],
    refused: dict[str, str] | None = None,
) -> dict[str, DeviceStatus]:
    """Status documents arriving within ``seconds``, by device (the one in the topic), each
    signed by that device's key in ``keys``. Any other is skipped (and noted in ``refused``,
    by topic, when given): every message is taken, none can stop the wait."""
    found: dict[str, DeviceStatus] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = link.receive(min(left, 0.2))
        if message is None or not message.payload:
            continue
        try:
            where = parse_topic(message.topic)
            found[where.device_id] = verify_status(
                message.payload, site=where.site, device_id=where.device_id, device_keys=keys
            )
        except RejectedInput as exc:
            log.warning("status on %s refused (%s): %s", message.topic[:200], exc.reason, exc)
            if refused is not None:
                refused[message.topic[:200]] = exc.reason
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
    failed: str | None = field(default=None)  # never sent: why


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
    keys: Mapping[str, ed25519.Ed25519PublicKey],
) -> None:
    deadline = time.monotonic() + timeout
    outcomes = [o for o in outcomes if o.failed is None]  # the others were never sent
    while outcomes:
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
        statuses.update(collect_statuses(link, min(left, 0.5), keys))
    print(file=sys.stderr)
    for item in outcomes:
        if item.result == "pending":
            item.result = (
                "offline"
                if item.device not in statuses or statuses[item.device].state is State.OFFLINE
                else "no answer"
            )


def _warn_alarms(state: OpsState, statuses: Mapping[str, DeviceStatus]) -> None:
    for device, status in sorted(statuses.items()):
        for alarm in state.alarms(device, status):
            log.error("%s: %s", device, alarm)


def _refused_by_broker(link: MqttLink, mid: int, what: str, device: str) -> None:
    code = link.wait_ack(mid)
    if code >= 0x80:
        raise UsageError(
            f"the broker refused the {what} for {device} (reason {code:#x}): "
            "is this client an ops client?"
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
    _warn_alarms(state, statuses)
    outcomes = []
    for device in devices:
        now = datetime.now(UTC).replace(microsecond=0)
        outcome = Outcome(device.device_id, 0, sent_at=now)
        outcomes.append(outcome)
        try:
            outcome.wanted = version = state.reserve(device.device_id, "watchlist_version")
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
            mid = link.publish(topic(device, Kind.WATCHLIST), bundle, retain=True)
            _refused_by_broker(link, mid, "watchlist", device.device_id)
        except (UsageError, MqttError, OSError) as exc:
            # One device failing must not keep the list from the others.
            _failed(outcome, exc)
    wait_for(
        link,
        outcomes,
        statuses,
        what="watchlist",
        timeout=timeout,
        done=_installed,
        keys=device_keys(devices),
    )
    return outcomes


def _failed(outcome: Outcome, exc: Exception) -> None:
    outcome.failed = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    outcome.result = f"failed: {outcome.failed}"
    log.error("%s: not sent: %s", outcome.device, outcome.failed)


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
    _warn_alarms(state, statuses)
    outcomes = []
    for device in devices:
        now = datetime.now(UTC).replace(microsecond=0)
        outcome = Outcome(device.device_id, 0, sent_at=now)
        outcomes.append(outcome)
        try:
            outcome.wanted = counter = state.reserve(device.device_id, "command_counter")
            signed = sign_command(
                Command(device.device_id, device.site, action, counter, now, now + validity),
                signers,
            )
            # Retained: a device that is offline now gets it when it reconnects (within its
            # validity); the device treats a repeat of the last command it ran as done.
            mid = link.publish(topic(device, Kind.COMMAND), signed, retain=True)
            _refused_by_broker(link, mid, "command", device.device_id)
            if action is Action.WIPE:
                mid = link.publish(topic(device, Kind.WATCHLIST), b"", retain=True)
                _refused_by_broker(link, mid, "cleared watchlist", device.device_id)
        except (UsageError, MqttError, OSError) as exc:
            # A wipe fan-out reaches every other device even if one fails (finding 2).
            _failed(outcome, exc)

    wait_for(
        link,
        outcomes,
        statuses,
        what="command",
        done=_command_done(action),
        timeout=timeout,
        keys=device_keys(devices),
    )
    return outcomes


def _command_done(action: Action) -> Callable[[DeviceStatus, Outcome], bool]:
    def done(status: DeviceStatus, outcome: Outcome) -> bool:
        watchlist = _watchlist(status)
        if watchlist is None or watchlist.command_counter < outcome.wanted:
            return False
        if action is Action.WIPE:
            return watchlist.version is None
        return status.state is (State.PAUSED if action is Action.PAUSE else State.ONLINE)

    return done


def send_signed(
    link: MqttLink,
    device: DeviceRecord,
    data: bytes,
    state: OpsState,
    *,
    number: int,
    action: Action | None,
    timeout: float = 60.0,
) -> Outcome:
    """Push a bundle (``action`` None) or a command signed elsewhere (``lfr-watchlist sign``)
    to its device and wait for it. The caller has checked the signatures against the pinned
    threshold. Its version or counter was reserved in an ops state when it was made; this
    state is raised to it too, so this workstation never issues that number again."""
    key = "watchlist_version" if action is None else "command_counter"
    if number > state.get(device.device_id, key):
        state.set(device.device_id, key, number)
    statuses = read_statuses(link, [device])
    _warn_alarms(state, statuses)
    now = datetime.now(UTC).replace(microsecond=0)
    outcome = Outcome(device.device_id, number, sent_at=now)
    if action is None:
        mid = link.publish(topic(device, Kind.WATCHLIST), data, retain=True)
        _refused_by_broker(link, mid, "watchlist", device.device_id)
    else:
        mid = link.publish(topic(device, Kind.COMMAND), data, retain=True)
        _refused_by_broker(link, mid, "command", device.device_id)
        if action is Action.WIPE:
            mid = link.publish(topic(device, Kind.WATCHLIST), b"", retain=True)
            _refused_by_broker(link, mid, "cleared watchlist", device.device_id)
    wait_for(
        link,
        [outcome],
        statuses,
        what="watchlist" if action is None else "command",
        done=_installed if action is None else _command_done(action),
        timeout=timeout,
        keys=device_keys([device]),
    )
    return outcome


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def fleet_rows(statuses: dict[str, DeviceStatus], state: OpsState | None = None) -> list[list[str]]:
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
        ours = [] if state is None else state.alarms(device, status)
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
                "; ".join([*report.alarms, *ours]) or "-",
            ]
        )
    return rows
