"""The watchlist at rest: the sealed bundle exactly as received, and the anti-rollback floors.

Verification is :class:`~agent.core.device_state.DeviceState`'s; this is its disk. Install
order keeps a power cut harmless: verify fully in memory, write the bundle atomically, then
raise the version floor. A crash between the two leaves the new bundle with the old floor,
which re-verifies at start. The previous watchlist stays in force on any rejection, because
nothing is written until the new one has verified.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from agent.core.device_state import DeviceState, Floors, Install, TrustRoot
from agent.io.identity import DeviceIdentity
from lfrkit.files import atomic_write, read_bounded, remove, remove_stale_temps
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.errors import Expired
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.watchlist import Watchlist

log = logging.getLogger(__name__)


class WatchlistStore:
    def __init__(
        self, identity: DeviceIdentity, embedder_sha256: str, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._layout = identity.layout
        self._limits = limits
        self.root = TrustRoot(
            identity.device_id,
            identity.site,
            identity.trust.policy,
            identity.hpke_keys,
            embedder_sha256,
            limits,
        )

    @property
    def path(self) -> Path:
        """The sealed bundle at rest."""
        return self._layout.watchlist

    def open_state(self) -> DeviceState:
        """The device's trusted state as the disk holds it: the floors (the watchlist itself
        comes in through :meth:`DeviceState.load_stored`)."""
        return DeviceState(self.root, self.floors())

    def floors(self) -> Floors:
        path = self._layout.counters
        if not path.exists():
            return Floors()
        # Our own file, but a corrupt one must fail closed, not reset the floors to zero.
        fields = Fields(
            parse_json_object(read_bounded(path, 4096, "counters"), str(path), 4096),
            str(path),
            allowed=frozenset({"watchlist_version", "command_counter", "paused", "wiped"}),
        )
        return Floors(
            fields.integer("watchlist_version", 0, 2**53),
            fields.integer("command_counter", 0, 2**53),
            # Absent in files written before the command state was kept (issue 17).
            _flag(fields, "paused"),
            _flag(fields, "wiped"),
        )

    def save_floors(self, floors: Floors) -> None:
        atomic_write(
            self._layout.counters,
            canonical_json(
                {
                    "watchlist_version": floors.watchlist_version,
                    "command_counter": floors.command_counter,
                    "paused": floors.paused,
                    "wiped": floors.wiped,
                }
            ),
            0o600,
        )

    def read_stored(self) -> bytes | None:
        """The bundle at rest (None if there is none), after clearing interrupted writes."""
        for interrupted in (self.path, self._layout.counters):
            if remove_stale_temps(interrupted):
                log.warning("removed the temp file of an interrupted write of %s", interrupted)
        if not self.path.exists():
            return None
        return read_bounded(self.path, self._limits.bundle_bytes, "watchlist")

    def commit(self, install: Install) -> None:
        """Carry out an install on disk: the bundle (unless it is the stored one), then the
        floors. Raises OSError when the disk refuses; the state is then not to change."""
        if not install.stored:
            atomic_write(self.path, install.bundle, 0o600)
        if install.floors is not None:
            self.save_floors(install.floors)
        if not install.stored:
            header = install.watchlist.header
            log.info(
                "watchlist version %d installed (%d entries, expires %s)",
                header.version,
                len(install.watchlist.entries),
                header.expires_at,
            )

    def wipe(self, why: str) -> bool:
        removed = remove(self.path)
        if removed:
            log.warning("watchlist wiped from disk (%s)", why)
        return removed

    # -- one-shot use (lfr-agent watchlist install/show, tests): verify and carry out --------

    def install(self, data: bytes, now: datetime) -> Watchlist:
        """Verify ``data`` as a new watchlist and make it the installed one."""
        install = self.open_state().verify_new(data, now)
        self.commit(install)
        return install.watchlist

    def load(self, now: datetime, *, wipe_if_expired: bool = True) -> Watchlist | None:
        """Re-verify the stored bundle (at start). Expired: wiped. Invalid: raises."""
        data = self.read_stored()
        if data is None:
            return None
        try:
            install = self.open_state().verify_stored(data, now)
        except Expired:
            if wipe_if_expired:
                self.wipe("expired")
            raise
        self.commit(install)
        return install.watchlist


def _flag(fields: Fields, name: str) -> bool:
    return fields.boolean(name) if fields.has(name) else False
