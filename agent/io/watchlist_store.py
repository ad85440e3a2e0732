"""The watchlist at rest: the sealed bundle exactly as received, and the anti-rollback floors.

Verification is :class:`~agent.core.device_state.DeviceState`'s; this is its disk. Install
order keeps a power cut harmless: verify fully in memory, write the bundle atomically, then
raise the version floor. A crash between the two leaves the new bundle with the old floor,
which re-verifies at start. The previous watchlist stays in force on any rejection, because
nothing is written until the new one has verified.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.core.device_state import DeviceState, Floors, Install, TrustRoot
from agent.io.identity import DeviceIdentity
from lfrkit.files import atomic_write, read_bounded, remove, remove_stale_temps
from protocol.encoding import (
    Fields,
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json_object,
)
from protocol.errors import Expired, RejectedInput
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.watchlist import Watchlist

log = logging.getLogger(__name__)


_MAC_INFO = b"lfr-counters-mac/1"
_FLOOR_MEMBERS = frozenset({"watchlist_version", "command_counter", "paused", "wiped"})


def _mac_key(identity: DeviceIdentity) -> bytes:
    """A MAC key only this device's signing key yields (HKDF, its own ``info``): a counters file
    edited, or copied from another device, does not verify (issue 17 finding 5)."""
    raw = identity.signing_key.private_bytes_raw()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO).derive(raw)


class WatchlistStore:
    def __init__(
        self,
        identity: DeviceIdentity,
        embedder_sha256: str,
        limits: Limits = DEFAULT_LIMITS,
        *,
        min_threshold: float | None = None,
    ) -> None:
        self._layout = identity.layout
        self._limits = limits
        self._mac_key = _mac_key(identity)
        self._bound = {"device_id": identity.device_id, "site": identity.site}
        # Why the floors on disk could not be trusted at start (None: they could); an alarm
        # in the status until a command from ops re-establishes the state (agent.control).
        self.floors_problem: str | None = None
        self.root = TrustRoot(
            identity.device_id,
            identity.site,
            identity.trust.policy,
            identity.hpke_keys,
            embedder_sha256,
            limits,
            min_threshold,
        )

    @property
    def path(self) -> Path:
        """The sealed bundle at rest."""
        return self._layout.watchlist

    def open_state(self) -> DeviceState:
        """The device's trusted state as the disk holds it: the floors (the watchlist itself
        comes in through :meth:`DeviceState.load_stored`)."""
        return DeviceState(self.root, self.floors())

    def _ran_before(self) -> bool:
        """Whether this state folder shows the agent ran here (so floors were saved)."""
        root = self._layout.root
        return self.path.exists() or (root / "outbox.sqlite").exists()

    def floors(self) -> Floors:
        """The floors on disk if their MAC proves this device wrote them. Otherwise (edited,
        unbound, corrupt, or deleted after the agent ran): an alarm, and only what is
        provable: no floor above zero but the stored bundle's own version (re-verified at
        start), and paused until ops send a command, so deleting the file cannot undo a pause
        or re-open old versions silently."""
        path = self._layout.counters
        if not path.exists():
            if not self._ran_before():
                try:  # the first start: from now on, a missing file is news
                    self.save_floors(Floors())
                except OSError as exc:
                    log.warning("counters not written at first start: %s", exc)
                return Floors()
            return self._unproven(f"{path} is missing")
        try:
            fields = Fields(
                parse_json_object(read_bounded(path, 4096, "counters"), str(path), 4096),
                str(path),
                allowed=_FLOOR_MEMBERS | {"mac"},
            )
            floors = Floors(
                fields.integer("watchlist_version", 0, 2**53),
                fields.integer("command_counter", 0, 2**53),
                fields.boolean("paused"),
                fields.boolean("wiped"),
            )
            mac = b64url_decode(fields.text("mac", max_len=64), f"{path}: mac")
        except RejectedInput as exc:
            return self._unproven(f"{path} is not valid ({exc})")
        if not hmac.compare_digest(mac, self._mac(floors)):
            return self._unproven(f"{path} was not written by this device (MAC fails)")
        self.floors_problem = None
        return floors

    def _unproven(self, why: str) -> Floors:
        self.floors_problem = f"anti-rollback floors not proven: {why}; paused until a command"
        log.error("%s", self.floors_problem)
        return Floors(paused=True)

    def _mac(self, floors: Floors) -> bytes:
        body = {**self._floors_json(floors), **self._bound}
        return hmac.new(self._mac_key, canonical_json(body), sha256).digest()

    @staticmethod
    def _floors_json(floors: Floors) -> dict[str, int | bool]:
        return {
            "watchlist_version": floors.watchlist_version,
            "command_counter": floors.command_counter,
            "paused": floors.paused,
            "wiped": floors.wiped,
        }

    def save_floors(self, floors: Floors) -> None:
        doc = {**self._floors_json(floors), "mac": b64url_encode(self._mac(floors))}
        atomic_write(self._layout.counters, canonical_json(doc), 0o600)

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
