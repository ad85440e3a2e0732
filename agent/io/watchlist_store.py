"""The watchlist at rest: the sealed bundle exactly as received, and the anti-rollback floors.

Install order keeps a power cut harmless: verify fully in memory, write the bundle atomically,
then raise the version floor. A crash between the two leaves the new bundle with the old floor,
which re-verifies at start. The previous watchlist stays in force on any rejection, because
nothing is written until the new one has verified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from agent.io.identity import DeviceIdentity
from lfrkit.files import atomic_write, read_bounded, remove, remove_stale_temps
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import Expired
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.watchlist import Watchlist, open_bundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Floors:
    watchlist_version: int = 0
    command_counter: int = 0


class WatchlistStore:
    def __init__(
        self, identity: DeviceIdentity, embedder_sha256: str, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._identity = identity
        self._layout = identity.layout
        self._embedder = embedder_sha256
        self._limits = limits

    def floors(self) -> Floors:
        path = self._layout.counters
        if not path.exists():
            return Floors()
        # Our own file, but a corrupt one must fail closed, not reset the floors to zero.
        fields = Fields(
            parse_json_object(read_bounded(path, 4096, "counters"), str(path), 4096),
            str(path),
            allowed=frozenset({"watchlist_version", "command_counter"}),
        )
        return Floors(
            fields.integer("watchlist_version", 0, 2**53),
            fields.integer("command_counter", 0, 2**53),
        )

    def save_floors(self, floors: Floors) -> None:
        atomic_write(
            self._layout.counters,
            canonical_json(
                {
                    "watchlist_version": floors.watchlist_version,
                    "command_counter": floors.command_counter,
                }
            ),
            0o600,
        )

    def _open(self, data: bytes, min_version: int, now: datetime) -> Watchlist:
        return open_bundle(
            data,
            trust=self._identity.trust.policy,
            device_id=self._identity.device_id,
            site=self._identity.site,
            hpke_key=self._identity.hpke_keys,
            embedder_sha256=self._embedder,
            min_version=min_version,
            now=now,
            limits=self._limits,
        )

    def install(self, data: bytes, now: datetime) -> Watchlist:
        """Verify ``data`` as a new watchlist and make it the installed one."""
        floors = self.floors()
        watchlist = self._open(data, floors.watchlist_version + 1, now)
        atomic_write(self._layout.watchlist, data, 0o600)
        self.save_floors(Floors(watchlist.header.version, floors.command_counter))
        log.info(
            "watchlist version %d installed (%d entries, expires %s)",
            watchlist.header.version,
            len(watchlist.entries),
            watchlist.header.expires_at,
        )
        return watchlist

    def load(self, now: datetime, *, wipe_if_expired: bool = True) -> Watchlist | None:
        """Re-verify the stored bundle (at start). Expired: wiped. Invalid: raises."""
        path = self._layout.watchlist
        for interrupted in (path, self._layout.counters):
            if remove_stale_temps(interrupted):
                log.warning("removed the temp file of an interrupted write of %s", interrupted)
        if not path.exists():
            return None
        floors = self.floors()
        try:
            watchlist = self._open(
                read_bounded(path, self._limits.bundle_bytes, "watchlist"),
                floors.watchlist_version,
                now,
            )
        except Expired:
            if wipe_if_expired:
                self.wipe("expired")
            raise
        if watchlist.header.version > floors.watchlist_version:
            # Power cut between writing the bundle and raising the floor: finish the job.
            self.save_floors(Floors(watchlist.header.version, floors.command_counter))
        return watchlist

    def wipe(self, why: str) -> bool:
        removed = remove(self._layout.watchlist)
        if removed:
            log.warning("watchlist wiped from disk (%s)", why)
        return removed
