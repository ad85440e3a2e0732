"""The retained status document: health and privacy counters of one device, never identities.

On the wire it is a compact JWS (``typ`` ``lfr-status+jws``, ``kid`` = device id) signed by
the device key, like an event (:func:`sign_status`, :func:`verify_status`): consumers accept
it only from the device whose topic it arrived on (issue 17 finding 1). The last will is
signed too, when the device connects.

The device builds it from typed parts and :func:`encode_status` writes it as canonical JSON;
ops and control-room tools read it back through :func:`parse_status`, the same code, so what
the one writes the other accepts. The last will (``offline_status``) carries only ``state``,
``device_id`` and ``site``; every other document carries all members. Parsing is as strict as
for the other formats: size before parsing, no unknown or missing members, bounded numbers,
one :class:`~protocol.errors.RejectedInput` for anything else. Members added after the first
release (:data:`LATER_MEMBERS`) may be missing, so an older device's document still parses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import Fields, canonical_json, format_time, parse_json_object
from protocol.entries import SHA256_HEX
from protocol.errors import BadEncoding, BadSignature, Oversize, UnknownSigner, WrongDevice
from protocol.jws import is_valid, parse_compact, sign_compact
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.names import check_name

MAX_COUNT = 2**53  # exact in every JSON implementation
MAX_REAL = 1e12  # finite, far beyond any frame rate or stall
MAX_TEXT = 8192  # an alarm quotes an OS error, which may name a long path
MAX_ITEMS = 64  # alarms, model hashes, quality reasons

WILL_MEMBERS = frozenset({"state", "device_id", "site"})
REPORT_MEMBERS = frozenset(
    {
        "software_version",
        "embedder_sha256",
        "model_hashes",
        "watchlist_version",
        "deployment_id",
        "expires_at",
        "watchlist",
        "version_floor",
        "command_counter",
        "uptime_s",
        "fps",
        "frames",
        "faces_detected",
        "faces_discarded",
        "faces_rejected_quality",
        "matches",
        "events_published",
        "events_queued",
        "events_held",
        "events_dropped",
        "seconds_since_frame",
        "outbox_max",
        "camera_errors",
        "camera_restarts",
        "frames_dropped",
        "last_rejection",
        "alarms",
        "at",
    }
)
# Added with the embedding schedule and the per-camera detector (issue 15) and the track
# decision (issue 16, the time to alert); absent from older devices' documents.
# tracks_started (issue 16 §4): people seen, for the pilot report's rates per person.
LATER_MEMBERS = frozenset(
    {
        "dropped_fps",
        "faces_embedded",
        "stage_cpu_s",
        "detector",
        "time_to_alert_s",
        "tracks_started",
    }
)
_REJECTION_MEMBERS = frozenset({"what", "reason", "at"})


class State(StrEnum):
    ONLINE = "online"
    PAUSED = "paused"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Rejection:
    """The last watchlist or command the device refused: what, why (a reason code), when."""

    what: str
    reason: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "reason": self.reason, "at": format_time(self.at)}


@dataclass(frozen=True)
class WatchlistReport:
    """The device's trusted state: the installed watchlist and the anti-rollback floors."""

    version: int | None
    deployment_id: str | None
    expires_at: datetime | None
    note: str  # installed, none, expired and wiped, wiped by command
    version_floor: int
    command_counter: int
    last_rejection: Rejection | None

    def to_json(self) -> dict[str, Any]:
        return {
            "watchlist_version": self.version,
            "deployment_id": self.deployment_id,
            "expires_at": None if self.expires_at is None else format_time(self.expires_at),
            "watchlist": self.note,
            # Anti-rollback floors, so ops tools pick the next version and counter.
            "version_floor": self.version_floor,
            "command_counter": self.command_counter,
            "last_rejection": None
            if self.last_rejection is None
            else self.last_rejection.to_json(),
        }


@dataclass(frozen=True)
class FramesReport:
    """Privacy counters of the camera and the frame pipeline since start: numbers only."""

    frames: int
    faces_detected: int
    faces_discarded: int
    faces_rejected_quality: Mapping[str, int]
    matches: int
    camera_errors: int
    camera_restarts: int
    frames_dropped: int
    faces_embedded: int = 0  # embeddings run; a tracked face is embedded only when it pays
    # Process CPU seconds spent in each stage since start: detect, embed, match.
    stage_cpu_s: Mapping[str, float] = field(default_factory=dict)
    # The face detector in use (blazeface, yunet; "auto" before the first frame decides).
    detector: str = ""
    # Seconds from a face first reaching the minimum size to its event queued: "last" and
    # "median" of the device's recent alerts; empty before the first alert.
    time_to_alert_s: Mapping[str, float] = field(default_factory=dict)
    # Face tracks started since start: people seen (one per appearance in view), the
    # denominator of false alerts per 1,000 people in the pilot report. None: not reported.
    tracks_started: int | None = None

    def to_json(self) -> dict[str, Any]:
        # Omitted before the first alert, so a device that never alerted writes the same bytes
        # as before the member existed.
        timed: dict[str, Any] = {}
        if self.time_to_alert_s:
            timed["time_to_alert_s"] = {
                k: round(v, 3) for k, v in sorted(self.time_to_alert_s.items())
            }
        if self.tracks_started is not None:
            timed["tracks_started"] = self.tracks_started
        return {
            "frames": self.frames,
            "faces_detected": self.faces_detected,
            "faces_discarded": self.faces_discarded,
            "faces_rejected_quality": dict(sorted(self.faces_rejected_quality.items())),
            "matches": self.matches,
            "camera_errors": self.camera_errors,
            "camera_restarts": self.camera_restarts,
            "frames_dropped": self.frames_dropped,
            "faces_embedded": self.faces_embedded,
            "stage_cpu_s": {k: round(v, 3) for k, v in sorted(self.stage_cpu_s.items())},
            "detector": self.detector,
            **timed,
        }


@dataclass(frozen=True)
class EventsReport:
    """The event path: published, queued on disk, held in memory, dropped; the outbox size."""

    events_published: int
    events_queued: int
    events_held: int  # signed but not yet on disk (the disk refused the write)
    events_dropped: int
    outbox_max: int

    def to_json(self) -> dict[str, Any]:
        return {
            "events_published": self.events_published,
            "events_queued": self.events_queued,
            "events_held": self.events_held,
            "events_dropped": self.events_dropped,
            "outbox_max": self.outbox_max,
        }


@dataclass(frozen=True)
class Report:
    """Everything a running device says about itself beyond state and name."""

    software_version: str
    embedder_sha256: str
    model_hashes: Mapping[str, str]
    uptime_s: int
    fps: float
    seconds_since_frame: float
    watchlist: WatchlistReport
    frames: FramesReport
    events: EventsReport
    alarms: tuple[str, ...]
    at: datetime
    dropped_fps: float = 0.0  # frames the capture slot overwrote, per second

    def to_json(self) -> dict[str, Any]:
        return {
            "software_version": self.software_version,
            "embedder_sha256": self.embedder_sha256,
            "model_hashes": dict(self.model_hashes),
            "uptime_s": self.uptime_s,
            "fps": self.fps,
            "dropped_fps": self.dropped_fps,
            "seconds_since_frame": self.seconds_since_frame,
            **self.watchlist.to_json(),
            **self.frames.to_json(),
            **self.events.to_json(),
            "alarms": list(self.alarms),
            "at": format_time(self.at),
        }


@dataclass(frozen=True)
class DeviceStatus:
    state: State
    device_id: str
    site: str
    report: Report | None = None  # None: the last will

    def to_json(self) -> dict[str, Any]:
        head = {"state": self.state.value, "device_id": self.device_id, "site": self.site}
        return head if self.report is None else {**head, **self.report.to_json()}


def encode_status(status: DeviceStatus) -> bytes:
    return canonical_json(status.to_json())


def offline_status(device_id: str, site: str) -> bytes:
    """The last will: what the broker publishes if the device vanishes."""
    return encode_status(DeviceStatus(State.OFFLINE, device_id, site))


def parse_status(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> DeviceStatus:
    """A status document from the broker, as the device wrote it, or one RejectedInput."""
    obj = parse_json_object(payload, "status", limits.status_bytes)
    fields = Fields(obj, "status", allowed=WILL_MEMBERS | REPORT_MEMBERS | LATER_MEMBERS)
    _require(obj, WILL_MEMBERS, "status")
    try:
        state = State(fields.text("state", max_len=16))
    except ValueError:
        raise BadEncoding("status: state must be online, paused or offline") from None
    device_id = check_name(fields.text("device_id", max_len=63), "status: device_id")
    site = check_name(fields.text("site", max_len=63), "status: site")
    if obj.keys() == WILL_MEMBERS:
        return DeviceStatus(state, device_id, site)
    _require(obj, REPORT_MEMBERS, "status")
    return DeviceStatus(state, device_id, site, _report(obj, fields))


def _report(obj: Mapping[str, Any], fields: Fields) -> Report:
    embedder = fields.text("embedder_sha256", max_len=64)
    if not SHA256_HEX.match(embedder):
        raise BadEncoding("status: embedder_sha256 must be 64 lowercase hex digits")
    return Report(
        software_version=fields.text("software_version", max_len=64),
        embedder_sha256=embedder,
        model_hashes=_mapping(obj, "model_hashes", _is_hash),
        uptime_s=fields.integer("uptime_s", -MAX_COUNT, MAX_COUNT),  # negative: clock set back
        fps=fields.number("fps", 0.0, MAX_REAL),
        seconds_since_frame=fields.number("seconds_since_frame", 0.0, MAX_REAL),
        watchlist=_watchlist(obj, fields),
        frames=FramesReport(
            frames=_count(fields, "frames"),
            faces_detected=_count(fields, "faces_detected"),
            faces_discarded=_count(fields, "faces_discarded"),
            faces_rejected_quality=_mapping(obj, "faces_rejected_quality", _is_count),
            matches=_count(fields, "matches"),
            camera_errors=_count(fields, "camera_errors"),
            camera_restarts=_count(fields, "camera_restarts"),
            frames_dropped=_count(fields, "frames_dropped"),
            faces_embedded=_count(fields, "faces_embedded") if "faces_embedded" in obj else 0,
            stage_cpu_s=_mapping(obj, "stage_cpu_s", _is_seconds) if "stage_cpu_s" in obj else {},
            detector=fields.text("detector", max_len=32, min_len=0) if "detector" in obj else "",
            time_to_alert_s=(
                _mapping(obj, "time_to_alert_s", _is_seconds) if "time_to_alert_s" in obj else {}
            ),
            tracks_started=_count(fields, "tracks_started") if "tracks_started" in obj else None,
        ),
        events=EventsReport(
            events_published=_count(fields, "events_published"),
            events_queued=_count(fields, "events_queued"),
            events_held=_count(fields, "events_held"),
            events_dropped=_count(fields, "events_dropped"),
            outbox_max=_count(fields, "outbox_max"),
        ),
        alarms=tuple(_alarm(a) for a in fields.items("alarms", MAX_ITEMS)),
        at=fields.time("at"),
        dropped_fps=fields.number("dropped_fps", 0.0, MAX_REAL) if "dropped_fps" in obj else 0.0,
    )


def _watchlist(obj: Mapping[str, Any], fields: Fields) -> WatchlistReport:
    rejection = None
    if obj["last_rejection"] is not None:
        sub = fields.sub("last_rejection", allowed=_REJECTION_MEMBERS)
        _require(obj["last_rejection"], _REJECTION_MEMBERS, "status: last_rejection")
        rejection = Rejection(
            sub.text("what", max_len=64), sub.text("reason", max_len=64), sub.time("at")
        )
    return WatchlistReport(
        version=None if obj["watchlist_version"] is None else _count(fields, "watchlist_version"),
        deployment_id=(
            None if obj["deployment_id"] is None else fields.text("deployment_id", max_len=128)
        ),
        expires_at=None if obj["expires_at"] is None else fields.time("expires_at"),
        note=fields.text("watchlist", max_len=64),
        version_floor=_count(fields, "version_floor"),
        command_counter=_count(fields, "command_counter"),
        last_rejection=rejection,
    )


def _require(obj: Mapping[str, Any], members: frozenset[str], what: str) -> None:
    missing = sorted(members - obj.keys())
    if missing:
        raise BadEncoding(f"{what}: missing field {missing[0]!r}")


def _count(fields: Fields, name: str) -> int:
    return fields.integer(name, 0, MAX_COUNT)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_REAL


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 128


def _alarm(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        raise BadEncoding(f"status: an alarm must be a string of 1..{MAX_TEXT} characters")
    return value


def _mapping(obj: Mapping[str, Any], name: str, valid: Callable[[object], bool]) -> dict[str, Any]:
    value = obj[name]
    if not isinstance(value, dict):
        raise BadEncoding(f"status: field {name!r} must be an object")
    if len(value) > MAX_ITEMS:
        raise Oversize(f"status: field {name!r} has more than {MAX_ITEMS} members")
    for key, item in value.items():
        if not 1 <= len(key) <= 128 or not valid(item):
            raise BadEncoding(f"status: field {name!r} has an invalid member")
    return dict(value)


# -- the signed document on the wire (issue 17 finding 1) -----------------------------------

TYP = "lfr-status+jws"


def sign_status(status: DeviceStatus, device_key: ed25519.Ed25519PrivateKey) -> bytes:
    """The status as the device publishes it: a compact JWS by its own key."""
    payload = encode_status(status)
    parse_status(payload)  # never emit what a consumer would refuse
    return sign_compact(payload, device_key, status.device_id, TYP)


def signed_offline_status(
    device_id: str, site: str, device_key: ed25519.Ed25519PrivateKey
) -> bytes:
    """The last will, signed when the device connects (the broker publishes it later, as is)."""
    return sign_status(DeviceStatus(State.OFFLINE, device_id, site), device_key)


def verify_status(
    token: bytes,
    *,
    site: str,
    device_id: str,
    device_keys: Mapping[str, ed25519.Ed25519PublicKey],
    limits: Limits = DEFAULT_LIMITS,
) -> DeviceStatus:
    """A status that arrived on ``device_id``'s topic at ``site``, verified against that
    device's registered key (``device_keys``: the active devices). Signed by or naming
    another device: :class:`~protocol.errors.WrongDevice`."""
    jws = parse_compact(token, TYP, "status", limits.status_bytes)
    signature = jws.signatures[0]
    if signature.kid != device_id:
        raise WrongDevice(f"status: signed by {signature.kid!r} on the topic of {device_id!r}")
    key = device_keys.get(device_id)
    if key is None:
        raise UnknownSigner(f"status: {device_id!r} is not a trusted device")
    if not is_valid(signature, key):
        raise BadSignature(f"status: signature by {device_id!r} does not verify")
    status = parse_status(jws.payload, limits)
    if (status.device_id, status.site) != (device_id, site):
        raise WrongDevice(
            f"status: names {status.device_id}@{status.site}, arrived as {device_id}@{site}"
        )
    return status
