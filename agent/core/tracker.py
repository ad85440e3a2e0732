"""Faces across frames: one alert per person per track, on the track's evidence, with a cool-down.

Association is by geometry only (IoU, then centre distance), against where each track is
predicted to be now: its last box moved by its velocity (measured from its last two sightings).
A person crossing a concourse camera moves more than a face size between frames, so without the
prediction every walker was split into many short tracks, each too short to fill a template.
A track seen once has no velocity yet: it is searched for within ``search_factor`` face sizes
(wider than ``centre_factor``, which applies once the prediction exists). Nothing of a face
that matched nobody leaves the tracker, and what a track holds lives only while the track does:
:meth:`Track.end` zeroes and drops it when the track ends (not seen for ``max_age``, pushed out
by the bound, or the watchlist changed).

Two decision rules (``[matching] decision``):

- ``track`` (default): each track keeps a template, the mean of the unit embeddings of its best
  K faces, and the crop of its best face (:mod:`agent.core.template`). The caller matches the
  template once it holds K faces and passes a match to :meth:`Tracker.raise_alert`, which
  alerts at once with the best face as the probe (the evidence is already several frames).
- ``frame`` (the former rule): a face whose own embedding matched is offered
  (:meth:`Tracker.offer`); the best-scoring crop per (track, subject) within ``window`` becomes
  the alert (:meth:`Tracker.advance`). Only matched faces' crops are held.

A frame goes through in steps, so that the caller can decide per track whether a face is worth
embedding (:mod:`agent.core.schedule`): :meth:`Tracker.assign` the frame's boxes to tracks,
then offer matches or raise alerts, then :meth:`Tracker.advance` to collect the alerts due and
end the tracks that are gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from agent.core.matcher import Match
from agent.core.schedule import EmbedState
from agent.core.template import DEFAULT_FACES, Template, wipe

Box = tuple[float, float, float, float]
T = TypeVar("T")


@dataclass(frozen=True)
class Face(Generic[T]):
    box: Box
    match: Match | None = None
    crop: T | None = None  # only for matched faces


@dataclass(frozen=True)
class Alert(Generic[T]):
    track_id: int
    match: Match
    crop: T | None
    observed_at: datetime  # when the probe's face was seen
    # For the time to alert: when the face first reached the minimum size, and when the
    # alert was decided (both on the frames' timeline).
    sized_at: datetime | None = None
    raised_at: datetime | None = None


@dataclass
class _Pending(Generic[T]):
    first: datetime
    match: Match
    crop: T | None
    observed_at: datetime


@dataclass
class Track(Generic[T]):
    track_id: int
    box: Box
    last_seen: datetime
    alerted: set[str] = field(default_factory=set)
    pending: dict[str, _Pending[T]] = field(default_factory=dict)
    embed: EmbedState = field(default_factory=EmbedState)
    template: Template[T] = field(default_factory=Template)
    sized_at: datetime | None = None  # first frame its face reached the minimum size
    ended: bool = False
    # Centre motion in px/s from the last two sightings; None while seen once.
    velocity: tuple[float, float] | None = None
    sightings: int = 1

    def predicted(self, now: datetime) -> Box:
        """Where the box should be at ``now``: the last box moved by the velocity."""
        if self.velocity is None:
            return self.box
        dt = (now - self.last_seen).total_seconds()
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x0, y0, x1, y1 = self.box
        return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)

    def see(self, box: Box, now: datetime) -> None:
        """The track's face at ``now``: update the box and the velocity (smoothed)."""
        dt = (now - self.last_seen).total_seconds()
        if dt > 0:
            (ax, ay), (bx, by) = _centre(self.box), _centre(box)
            v = ((bx - ax) / dt, (by - ay) / dt)
            if self.velocity is not None:  # halfway to the new measurement: detector jitter
                v = ((v[0] + self.velocity[0]) / 2, (v[1] + self.velocity[1]) / 2)
            self.velocity = v
        self.box, self.last_seen = box, now
        self.sightings += 1

    def forget(self) -> None:
        """Zero and drop the faces held (template, crops) and the alert and schedule state."""
        for pending in self.pending.values():
            wipe(pending.crop)
        self.pending.clear()
        self.template.wipe()
        self.alerted.clear()
        self.embed.reset()

    def end(self) -> None:
        """The track is gone: forget everything it held (privacy: nothing outlives a track)."""
        self.forget()
        self.box = (0.0, 0.0, 0.0, 0.0)
        self.sized_at, self.velocity = None, None
        self.ended = True


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _distance(a: Box, b: Box) -> float:
    """Centre distance in face sizes of ``a``."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    size = max(a[2] - a[0], a[3] - a[1], 1.0)
    return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / size)


@dataclass
class TrackerStats:
    tracks_started: int = 0
    suppressed_cooldown: int = 0
    suppressed_same_track: int = 0


class Tracker(Generic[T]):
    def __init__(
        self,
        *,
        window: timedelta = timedelta(seconds=1),
        cooldown: timedelta = timedelta(minutes=5),
        max_age: timedelta = timedelta(seconds=1.5),
        iou_threshold: float = 0.3,
        centre_factor: float = 0.75,
        search_factor: float = 2.5,
        velocity: bool = True,
        max_tracks: int = 64,
        faces: int = DEFAULT_FACES,
    ) -> None:
        self.window, self.cooldown, self.max_age = window, cooldown, max_age
        self.iou_threshold, self.centre_factor, self.max_tracks = (
            iou_threshold,
            centre_factor,
            max_tracks,
        )
        # A track seen once may be this many face sizes away (it has no prediction yet).
        self.search_factor = search_factor
        self.use_velocity = velocity  # False: the former rule (last box, centre_factor only)
        self.faces = faces  # K: the faces a track's template holds
        self._tracks: list[Track[T]] = []
        self._next_id = 1
        self._frame = 0
        self._last_alert: dict[str, datetime] = {}
        self.stats = TrackerStats()

    @property
    def active_tracks(self) -> int:
        return len(self._tracks)

    @property
    def tracks(self) -> tuple[Track[T], ...]:
        """The live tracks (oldest first after :meth:`advance`)."""
        return tuple(self._tracks)

    def _associate(self, boxes: list[Box], now: datetime) -> list[Track[T] | None]:
        """Greedy: the most overlapping pairs first, then the nearest (in face sizes)."""
        pairs = []
        for ti, track in enumerate(self._tracks):
            where = track.predicted(now) if self.use_velocity else track.box
            reach = self.centre_factor
            if self.use_velocity and track.velocity is None:
                reach = max(reach, self.search_factor)
            for bi, box in enumerate(boxes):
                overlap, distance = iou(where, box), _distance(where, box)
                if overlap >= self.iou_threshold or distance <= reach:
                    pairs.append((-overlap, distance, ti, bi))
        pairs.sort()
        owner: list[Track[T] | None] = [None] * len(boxes)
        used: set[int] = set()
        for _, _, ti, bi in pairs:
            if ti in used or owner[bi] is not None:
                continue
            owner[bi] = self._tracks[ti]
            used.add(ti)
        return owner

    @property
    def frame(self) -> int:
        """How many frames have been assigned: the clock of the embedding schedule."""
        return self._frame

    def assign(self, boxes: list[Box], now: datetime) -> list[Track[T]]:
        """One frame's face boxes, each to its track (a new one if none is near)."""
        self._frame += 1
        owners = self._associate(boxes, now)
        tracks: list[Track[T]] = []
        for box, owner in zip(boxes, owners, strict=True):
            track = owner
            if track is None:
                track = Track(self._next_id, box, now, template=Template(self.faces))
                self._next_id += 1
                self.stats.tracks_started += 1
                self._tracks.append(track)
            else:
                track.see(box, now)
            tracks.append(track)
        return tracks

    def offer(self, track: Track[T], match: Match, crop: T | None, now: datetime) -> None:
        """A face of ``track`` matched: keep it if it is the subject's best in the window."""
        self._offer(track, Face(track.box, match, crop), now)

    def raise_alert(
        self, track: Track[T], match: Match, crop: T | None, now: datetime
    ) -> list[Alert[T]]:
        """Track rule: ``track``'s template matched; the alert now, unless the track already
        alerted for this subject or the subject is in its cool-down. ``crop`` must be the
        caller's own copy of the best face (the track's is zeroed when the track ends)."""
        if match.subject_ref in track.alerted:
            self.stats.suppressed_same_track += 1
            wipe(crop)
            return []
        at = track.template.crop_at or now
        track.pending[match.subject_ref] = _Pending(now, match, crop, at)
        return self._emit(track, match.subject_ref, now)

    def advance(self, now: datetime) -> list[Alert[T]]:
        """End of a frame: the alerts due now; tracks not seen for ``max_age`` end."""
        alerts: list[Alert[T]] = []
        alive: list[Track[T]] = []
        for track in self._tracks:
            gone = now - track.last_seen > self.max_age
            for ref in list(track.pending):
                if gone or now - track.pending[ref].first >= self.window:
                    alerts += self._emit(track, ref, now)
            if gone:
                track.end()
            else:
                alive.append(track)
        # Bounded: the oldest tracks go first.
        alive.sort(key=lambda t: t.last_seen)
        for track in alive[: -self.max_tracks]:
            track.end()
        self._tracks = alive[-self.max_tracks :]
        return alerts

    def update(self, faces: list[Face[T]], now: datetime) -> list[Alert[T]]:
        """Feed one frame's faces (matched or not); returns the alerts due now."""
        tracks = self.assign([f.box for f in faces], now)
        for face, track in zip(faces, tracks, strict=True):
            if face.match is not None:
                self._offer(track, face, now)
        return self.advance(now)

    def _offer(self, track: Track[T], face: Face[T], now: datetime) -> None:
        match = face.match
        assert match is not None
        if match.subject_ref in track.alerted:
            self.stats.suppressed_same_track += 1
            return
        pending = track.pending.get(match.subject_ref)
        if pending is None:
            track.pending[match.subject_ref] = _Pending(now, match, face.crop, now)
        elif match.score > pending.match.score:
            pending.match, pending.crop, pending.observed_at = match, face.crop, now

    def _emit(self, track: Track[T], ref: str, now: datetime) -> list[Alert[T]]:
        pending = track.pending.pop(ref)
        track.alerted.add(ref)
        last = self._last_alert.get(ref)
        if last is not None and now - last < self.cooldown:
            self.stats.suppressed_cooldown += 1
            wipe(pending.crop)
            return []
        self._last_alert[ref] = now
        return [
            Alert(
                track.track_id,
                pending.match,
                pending.crop,
                pending.observed_at,
                sized_at=track.sized_at,
                raised_at=now,
            )
        ]

    def flush(self, now: datetime) -> list[Alert[T]]:
        """Emit everything pending (end of a finite source, shutdown)."""
        alerts: list[Alert[T]] = []
        for track in self._tracks:
            for ref in list(track.pending):
                alerts += self._emit(track, ref, now)
        return alerts

    def forget_subjects(self) -> None:
        """Watchlist wiped or replaced: drop pending crops and cool-downs of old subjects; every
        track is embedded again against the new list."""
        for track in self._tracks:
            track.forget()
        self._last_alert.clear()
