"""The node's trusted state: the verified watchlist, the anti-rollback floors, the pause flag.

In the spirit of python-tuf's ``TrustedMetadataSet``, this is the whole device-side workflow
for what ops send (watchlists, commands) and for what time does to it (expiry), except I/O.
Each ``on_*``/``load_stored``/``check_expiry`` method takes bytes and ``now``, changes nothing
and returns one :data:`Decision`; the shell carries it out (disk first) and then
:meth:`DeviceState.apply` makes it the state, so a disk that refuses a write leaves the state
as it was. ``floors`` are the ones on disk: loaded once at start, raised only by decisions the
shell persisted.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from protocol.command import Action, Command, open_command
from protocol.errors import Expired, RejectedInput
from protocol.keys import HpkePrivateKey
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.status import Rejection, WatchlistReport
from protocol.trust import TrustPolicy
from protocol.watchlist import Watchlist, WatchlistHeader, open_bundle

INSTALLED = "installed"
NONE = "none"
EXPIRED = "expired and wiped"
WIPED = "wiped by command"


@dataclass(frozen=True)
class Floors:
    """Anti-rollback floors: the highest watchlist version and command counter accepted, and
    what the commands up to that counter left in force (paused, wiped). Saved together, so a
    restart resumes exactly the applied state: the retained last command comes back with the
    floor's own counter and is then "already applied", never re-run (issue 17 finding 3)."""

    watchlist_version: int = 0
    command_counter: int = 0
    paused: bool = False
    wiped: bool = False  # the last watchlist was removed by a wipe command (none installed since)


@dataclass(frozen=True)
class TrustRoot:
    """What every verification is made against: who this device is and whom it trusts."""

    device_id: str
    site: str
    trust: TrustPolicy
    hpke_keys: Mapping[str, HpkePrivateKey]
    embedder_sha256: str  # the embedding profile this device runs
    limits: Limits = DEFAULT_LIMITS
    # The profile's 1:1 threshold: no watchlist may match below it (None: no floor known).
    min_threshold: float | None = None


# -- decisions: what the shell is to carry out ---------------------------------------------


@dataclass(frozen=True)
class Nothing:
    why: str


@dataclass(frozen=True)
class AlreadyApplied:
    """The retained last command, delivered again: its counter is the floor (not a replay)."""

    command: Command


@dataclass(frozen=True)
class Refuse:
    what: str  # watchlist, command, stored watchlist
    error: RejectedInput
    at: datetime

    @property
    def reason(self) -> str:
        return self.error.reason


@dataclass(frozen=True)
class Install:
    """Make ``watchlist`` the one in force: write ``bundle`` (unless ``stored``), then ``floors``
    (None: they stay as they are)."""

    watchlist: Watchlist
    bundle: bytes
    floors: Floors | None
    stored: bool = False  # the bundle on disk, re-verified at start


@dataclass(frozen=True)
class Wipe:
    """Remove the watchlist from disk and memory; ``floors`` to save with it (a wipe command)."""

    reason: str  # for the log: wipe command, expired, failed re-verification: ...
    note: str  # what the status says afterwards
    command: Command | None = None
    floors: Floors | None = None
    refusal: Refuse | None = None  # the stored bundle that failed re-verification


@dataclass(frozen=True)
class Pause:
    command: Command
    floors: Floors | None


@dataclass(frozen=True)
class Resume:
    command: Command
    floors: Floors | None


Decision = Nothing | AlreadyApplied | Refuse | Install | Wipe | Pause | Resume


def _digest(bundle: bytes) -> bytes:
    return hashlib.sha256(bundle).digest()


class DeviceState:
    def __init__(self, root: TrustRoot, floors: Floors) -> None:
        self.root = root
        self.floors = floors
        self.watchlist: Watchlist | None = None
        self.note = WIPED if floors.wiped else NONE
        self.paused = floors.paused  # a pause survives a restart (issue 17 finding 3)
        self.last_rejection: Rejection | None = None
        self._installed: bytes | None = None  # sha256 of the bundle in force

    @property
    def header(self) -> WatchlistHeader | None:
        return None if self.watchlist is None else self.watchlist.header

    # -- verification: bytes and now in, a verified Install or one RejectedInput out ---------

    def _open(self, data: bytes, min_version: int, now: datetime) -> Watchlist:
        root = self.root
        return open_bundle(
            data,
            trust=root.trust,
            device_id=root.device_id,
            site=root.site,
            hpke_key=root.hpke_keys,
            embedder_sha256=root.embedder_sha256,
            min_version=min_version,
            now=now,
            limits=root.limits,
            min_threshold=root.min_threshold,
        )

    def verify_new(self, data: bytes, now: datetime) -> Install:
        """``data`` as a new watchlist: its version must exceed the floor."""
        watchlist = self._open(data, self.floors.watchlist_version + 1, now)
        floors = dataclasses.replace(
            self.floors, watchlist_version=watchlist.header.version, wiped=False
        )
        return Install(watchlist, data, floors)

    def verify_stored(self, data: bytes, now: datetime) -> Install:
        """``data`` as the bundle stored at rest: its version may equal the floor."""
        watchlist = self._open(data, self.floors.watchlist_version, now)
        floors = None
        if watchlist.header.version > self.floors.watchlist_version:
            # Power cut between writing the bundle and raising the floor: finish the job.
            floors = dataclasses.replace(self.floors, watchlist_version=watchlist.header.version)
        return Install(watchlist, data, floors, stored=True)

    # -- decisions -------------------------------------------------------------------------

    def load_stored(self, data: bytes | None, now: datetime) -> Decision:
        """At start: the bundle at rest (None if there is none), re-verified."""
        if data is None:
            return Nothing("no watchlist stored")
        try:
            return self.verify_stored(data, now)
        except Expired:
            return Wipe("expired", EXPIRED)
        except RejectedInput as exc:
            refusal = Refuse("stored watchlist", exc, now)
            return Wipe(f"failed re-verification: {exc.reason}", NONE, refusal=refusal)

    def on_watchlist(self, payload: bytes, now: datetime) -> Decision:
        if not payload:
            return Nothing("retained watchlist cleared (a wipe comes as a command)")
        if _digest(payload) == self._installed:
            return Nothing("the retained copy of what is installed, delivered again")
        try:
            return self.verify_new(payload, now)
        except RejectedInput as exc:
            return Refuse("watchlist", exc, now)

    def on_command(self, payload: bytes, now: datetime) -> Decision:
        if not payload:
            return Nothing("retained command cleared")
        root, floors = self.root, self.floors
        try:
            # Commands are retained, so the last one comes back on every reconnect: accept
            # its own counter here and treat that as "already done", not as a replay.
            command = open_command(
                payload,
                trust=root.trust,
                device_id=root.device_id,
                site=root.site,
                last_counter=max(0, floors.command_counter - 1),
                now=now,
                limits=root.limits,
            )
        except RejectedInput as exc:
            return Refuse("command", exc, now)
        if command.counter == floors.command_counter:
            return AlreadyApplied(command)
        raised = dataclasses.replace(floors, command_counter=command.counter)
        if command.action is Action.WIPE:
            return Wipe("wipe command", WIPED, command, dataclasses.replace(raised, wiped=True))
        if command.action is Action.PAUSE:
            return Pause(command, dataclasses.replace(raised, paused=True))
        return Resume(command, dataclasses.replace(raised, paused=False))

    def check_expiry(self, now: datetime) -> Decision:
        if self.watchlist is not None and self.watchlist.header.is_expired(now):
            return Wipe("expired", EXPIRED)
        return Nothing("no watchlist has expired")

    # -- the shell carried a decision out: make it the state ---------------------------------

    def apply(self, decision: Decision) -> None:
        match decision:
            case Refuse():
                self._refused(decision)
            case Install(watchlist=watchlist, bundle=bundle, floors=floors):
                if (
                    not decision.stored
                    and watchlist.header.version <= self.floors.watchlist_version
                ):
                    raise RuntimeError("stale install decision: the floor has moved past it")
                self.watchlist, self.note, self._installed = watchlist, INSTALLED, _digest(bundle)
                self._raise(floors)
            case Wipe(note=note, floors=floors, refusal=refusal):
                if refusal is not None:
                    self._refused(refusal)
                self.watchlist, self.note, self._installed = None, note, None
                self._raise(floors)
            case Pause(floors=floors) | Resume(floors=floors):
                self.paused = isinstance(decision, Pause)
                self._raise(floors)
            case Nothing() | AlreadyApplied():
                pass

    def _refused(self, refusal: Refuse) -> None:
        self.last_rejection = Rejection(
            refusal.what, refusal.reason, refusal.at.replace(microsecond=0)
        )

    def _raise(self, floors: Floors | None) -> None:
        if floors is not None:
            self.floors = floors

    def report(self) -> WatchlistReport:
        header = self.header
        return WatchlistReport(
            version=None if header is None else header.version,
            deployment_id=None if header is None else header.deployment_id,
            expires_at=None if header is None else header.expires_at,
            note=self.note,
            version_floor=self.floors.watchlist_version,
            command_counter=self.floors.command_counter,
            last_rejection=self.last_rejection,
        )
