"""The retained status document: health and privacy counters, never identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.io.capture import CaptureStats
from agent.io.publisher import PublisherStats
from agent.pipeline import Counters
from protocol.encoding import canonical_json, format_time
from protocol.watchlist import WatchlistHeader

SOFTWARE_VERSION = "0.1.0"


def offline_status(device_id: str, site: str) -> bytes:
    """The last will: what the broker publishes if the device vanishes."""
    return canonical_json({"state": "offline", "device_id": device_id, "site": site})


@dataclass
class StatusInputs:
    device_id: str
    site: str
    state: str  # online | paused | stopping
    embedder_sha256: str
    model_hashes: dict[str, str]
    watchlist: WatchlistHeader | None
    watchlist_note: str  # "installed", "none", "expired and wiped", "wiped by command"
    started_at: datetime
    now: datetime
    fps: float
    counters: Counters
    capture: CaptureStats
    publisher: PublisherStats
    events_queued: int
    events_held: int  # signed but not yet on disk (the disk refused the write)
    events_dropped: dict[str, int]  # by reason
    disk_error: str | None
    outbox_max: int
    outbox_alarm: float
    last_rejection: dict[str, str] | None
    version_floor: int = 0
    command_counter: int = 0
    seconds_since_frame: float = 0.0
    stall_seconds: float = 10.0
    storage_error: str | None = None  # a watchlist/counter write that failed


def build_status(s: StatusInputs) -> dict[str, Any]:
    alarms = []
    if s.events_queued >= s.outbox_alarm * s.outbox_max:
        alarms.append(f"outbox {s.events_queued}/{s.outbox_max} full")
    for reason, count in sorted(s.events_dropped.items()):
        alarms.append(f"{count} events dropped ({reason})")
    if s.disk_error is not None:
        alarms.append(f"outbox not writable, {s.events_held} events held in memory: {s.disk_error}")
    if s.storage_error is not None:
        alarms.append(f"state not writable: {s.storage_error}")
    if s.seconds_since_frame >= s.stall_seconds:
        alarms.append(f"camera stalled: no frame for {s.seconds_since_frame:.0f}s")
    if s.publisher.waiting_for_consumer:
        alarms.append(f"no consumer subscribed to events: {s.events_queued} kept on the device")
    if s.publisher.publish_refused:
        alarms.append(s.publisher.last_refusal)
    if s.capture.camera_errors:
        alarms.append(f"camera errors: {s.capture.camera_errors} ({s.capture.last_error})")
    return {
        "state": s.state,
        "device_id": s.device_id,
        "site": s.site,
        "software_version": SOFTWARE_VERSION,
        "embedder_sha256": s.embedder_sha256,
        "model_hashes": s.model_hashes,
        "watchlist_version": s.watchlist.version if s.watchlist else None,
        "deployment_id": s.watchlist.deployment_id if s.watchlist else None,
        "expires_at": format_time(s.watchlist.expires_at) if s.watchlist else None,
        "watchlist": s.watchlist_note,
        # Anti-rollback floors, so ops tools pick the next version and counter.
        "version_floor": s.version_floor,
        "command_counter": s.command_counter,
        "uptime_s": int((s.now - s.started_at).total_seconds()),
        "fps": round(s.fps, 2),
        "frames": s.counters.frames,
        "faces_detected": s.counters.faces_detected,
        "faces_discarded": s.counters.faces_discarded,
        "faces_rejected_quality": dict(sorted(s.counters.rejected.items())),
        "matches": s.counters.matches,
        "events_published": s.publisher.events_published,
        "events_queued": s.events_queued,
        "events_held": s.events_held,
        "events_dropped": sum(s.events_dropped.values()),
        "seconds_since_frame": round(s.seconds_since_frame, 1),
        "outbox_max": s.outbox_max,
        "camera_errors": s.capture.camera_errors,
        "camera_restarts": s.capture.camera_restarts,
        "frames_dropped": s.capture.frames_dropped,
        "last_rejection": s.last_rejection,
        "alarms": alarms,
        "at": format_time(s.now.replace(microsecond=0)),
    }


def summary_line(doc: dict[str, Any]) -> str:
    """systemd STATUS= line."""
    wl = doc["watchlist_version"]
    return (
        f"{doc['state']}; watchlist {'v' + str(wl) if wl else doc['watchlist']}; "
        f"{doc['fps']} fps; faces {doc['faces_detected']}; matches {doc['matches']}; "
        f"queued {doc['events_queued']}"
    )
