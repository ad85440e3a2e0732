"""What ops control on the device, carried out: watchlists, commands, and expiry.

:class:`~agent.core.device_state.DeviceState` decides (bytes and ``now`` in, a decision out);
:class:`DeviceControl` is its shell: it carries each decision out on disk (through
:class:`~agent.io.watchlist_store.WatchlistStore`) and in memory (the matcher frames are
matched against), logs it, and only then applies it to the state. A disk that refuses a
watchlist keeps the previous one in force and retries the verified bundle shortly, since the
broker will not send it again; a command is obeyed even when its counter cannot be saved.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agent.core.device_state import (
    AlreadyApplied,
    Decision,
    DeviceState,
    Floors,
    Install,
    Nothing,
    Pause,
    Refuse,
    Resume,
    Wipe,
)
from agent.core.matcher import Matcher
from agent.io.watchlist_store import WatchlistStore
from agent.status import Alarm, AlarmKind, Part
from protocol.status import WatchlistReport
from protocol.watchlist import Bins, Watchlist, WatchlistHeader

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
INSTALL_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class MatchingPolicy:
    """How a verified watchlist becomes a matcher. Its threshold is the one ops signed into the
    bundle for the list's size (never a 1:1 value picked here); ``local_floor`` (config
    ``[matching] threshold``) can only raise it, as can a per-entry threshold."""

    local_floor: float | None = None
    storage: str = "float32"
    # Use the signed threshold-by-coherence when the bundle has one (false: the signed value
    # for every template, the rule before it; for before/after measurements).
    coherence: bool = True
    # Add each several-photo entry's mean row when the signed threshold counts them.
    entry_means: bool = True

    def threshold(self, watchlist: Watchlist) -> float:
        signed = watchlist.header.threshold.value
        return signed if self.local_floor is None else max(signed, self.local_floor)

    def by_coherence(self, watchlist: Watchlist) -> Bins | None:
        bins = watchlist.header.threshold.by_coherence
        if bins is None or not self.coherence:
            return None
        floor = self.local_floor or 0.0
        return tuple((c, max(t, floor)) for c, t in bins)

    def matcher(self, watchlist: Watchlist) -> Matcher:
        threshold = self.threshold(watchlist)
        log.info(
            "matching %d entries at threshold %.4f (watchlist: %s)",
            len(watchlist.entries),
            threshold,
            watchlist.header.threshold.describe(),
        )
        return Matcher(
            watchlist.entries,
            threshold,
            self.storage,
            self.by_coherence(watchlist),
            entry_means=self.entry_means and watchlist.header.threshold.entry_means,
        )


class DeviceControl:
    def __init__(
        self,
        state: DeviceState,
        store: WatchlistStore,
        matching: MatchingPolicy,
        clock: Clock,
        *,
        retry_after: float = INSTALL_RETRY_SECONDS,
    ) -> None:
        self.state, self.store, self.matching_policy, self.clock = state, store, matching, clock
        self.retry_after = retry_after
        self.matcher: Matcher | None = None
        self.storage_error: str | None = None  # a watchlist/counter write that failed
        self._install_retry: tuple[bytes, float] | None = None  # (bundle, monotonic due)
        # Called when the watchlist in force changes (installed, replaced, wiped).
        self.on_change: list[Callable[[], None]] = []

    # -- what the rest of the agent reads -------------------------------------------------

    @property
    def watchlist(self) -> Watchlist | None:
        return self.state.watchlist

    @property
    def header(self) -> WatchlistHeader | None:
        return self.state.header

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def note(self) -> str:
        return self.state.note

    @property
    def floors(self) -> Floors:
        return self.state.floors

    @property
    def matching(self) -> Matcher | None:
        """What frames are matched against now: nothing while paused."""
        return None if self.state.paused else self.matcher

    def status(self) -> Part[WatchlistReport]:
        report = self.state.report()
        alarms: tuple[Alarm, ...] = ()
        if self.storage_error is not None:
            alarms = (
                Alarm(AlarmKind.STATE_UNWRITABLE, f"state not writable: {self.storage_error}"),
            )
        if self.store.floors_problem is not None:
            alarms += (Alarm(AlarmKind.FLOORS_UNPROVEN, self.store.floors_problem),)
        return Part(report, alarms)

    def news(self) -> tuple[object, ...]:
        """What, when it changes, is published at once."""
        state = self.state
        version = None if state.watchlist is None else state.watchlist.header.version
        return (
            state.paused,
            state.note,
            version,
            state.last_rejection,
            self.storage_error,
            self.store.floors_problem,
        )

    # -- what arrives, and what time does --------------------------------------------------

    def load_stored(self) -> None:
        """At start: the watchlist at rest, re-verified (expired or invalid: wiped)."""
        decision = self.state.load_stored(self.store.read_stored(), self.clock())
        if isinstance(decision, Install) and self.store.floors_problem is None:
            self.store.commit(decision)  # the floors, if a power cut left them behind
        # Unproven floors (counters.json lost or edited) are not re-saved from the bundle: the
        # file stays as found, so every start reports it until ops send a command.
        self._carry_out(decision)

    def on_watchlist(self, payload: bytes) -> None:
        decision = self.state.on_watchlist(payload, self.clock())
        if isinstance(decision, Nothing):
            return
        self._install_retry = None
        if isinstance(decision, Install):
            try:
                self.store.commit(decision)
            except OSError as exc:
                # The disk refused (full, read-only): the previous list stays in force, and
                # the verified bundle is tried again shortly.
                self.storage_error = f"watchlist install failed: {exc}"
                self._install_retry = (payload, time.monotonic() + self.retry_after)
                log.error("watchlist not installed, the previous one stays in force: %s", exc)
                return
            self.storage_error = None
        self._carry_out(decision)

    def on_command(self, payload: bytes) -> None:
        decision = self.state.on_command(payload, self.clock())
        if isinstance(decision, Pause | Resume | Wipe) and decision.command is not None:
            command = decision.command
            if decision.floors is not None:
                try:
                    self.store.save_floors(decision.floors)
                except OSError as exc:
                    # Still obeyed (a wipe or pause must not wait for disk space); the
                    # retained command comes back on reconnect and is applied again.
                    self.storage_error = f"command counter not saved: {exc}"
                    log.error("command counter %d not saved: %s", command.counter, exc)
                    decision = dataclasses.replace(decision, floors=None)
                else:
                    if self._install_retry is None:
                        self.storage_error = None  # the disk takes writes again
                    # A command from ops re-establishes the state a lost file left unproven.
                    self.store.floors_problem = None
            log.warning("command %s (counter %d) accepted", command.action.value, command.counter)
        self._carry_out(decision)

    def check_expiry(self, now: datetime) -> None:
        self._carry_out(self.state.check_expiry(now))

    def retry_install(self) -> None:
        if self._install_retry is not None and time.monotonic() >= self._install_retry[1]:
            self.on_watchlist(self._install_retry[0])

    def _carry_out(self, decision: Decision) -> None:
        """Log, wipe, apply (an install is on disk by now), and rebuild the matcher."""
        match decision:
            case Refuse():
                log.warning("%s rejected (%s): %s", decision.what, decision.reason, decision.error)
            case Wipe(refusal=refusal, reason=reason, command=command):
                if refusal is not None:
                    log.warning("%s rejected (%s): %s", refusal.what, refusal.reason, refusal.error)
                if command is not None and self._install_retry is not None:
                    # A bundle the disk refused before the wipe must not come back after it
                    # (issue 17 finding 4); an expiry keeps it: it is newer and re-verified.
                    log.warning("wipe command: the pending watchlist install retry is dropped")
                    self._install_retry = None
                self.store.wipe(reason)
            case Nothing() | AlreadyApplied() | Install() | Pause() | Resume():
                pass
        self.state.apply(decision)
        if isinstance(decision, Install | Wipe):
            self._use(self.state.watchlist)

    def _use(self, watchlist: Watchlist | None) -> None:
        self.matcher = None if watchlist is None else self.matching_policy.matcher(watchlist)
        for changed in self.on_change:
            changed()
