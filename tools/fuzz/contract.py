"""The contract each parser is held to: return, or raise one :class:`RejectedInput` with a
known reason and a message that repeats no sealed content, within a CPU-time budget."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from protocol import errors

Check = Callable[[bytes], object]


class Leak(Exception):
    """A refusal message that repeats what the sealed entries hold."""


class Hang(BaseException):
    """One input ran past the hang limit (raised by SIGALRM inside the parser)."""


class Timer:
    """Raises :class:`Hang` in the parser after ``seconds`` of CPU time (SIGPROF), or ten
    times that on the wall clock (SIGALRM, for a parser that would block). CPU time, so that
    a busy machine descheduling the campaign is not taken for a hang. Main thread only."""

    WALL_FACTOR = 10

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        self._previous: dict[int, Any] = {}

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        clock = "CPU" if signum == signal.SIGPROF else "wall-clock"
        limit = self.seconds * (1 if signum == signal.SIGPROF else self.WALL_FACTOR)
        raise Hang(f"more than {limit:g} s of {clock} time on one input")

    def __enter__(self) -> Timer:
        if self.armed:
            for sig in (signal.SIGPROF, signal.SIGALRM):
                self._previous[sig] = signal.signal(sig, self._fire)
        return self

    def start(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_PROF, self.seconds)
            signal.setitimer(signal.ITIMER_REAL, self.seconds * self.WALL_FACTOR)

    def stop(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            self.stop()
            for sig, previous in self._previous.items():
                signal.signal(sig, previous)


def run_one(
    check: Check, data: bytes, timer: Timer, secrets: tuple[str, ...] = ()
) -> tuple[str, BaseException | None, float]:
    """(outcome, exception, CPU seconds): outcome is 'ok', a reason code, or 'crash'."""
    started = time.process_time()
    outcome: str
    error: BaseException | None = None
    try:
        timer.start()
        try:
            check(data)
        finally:
            timer.stop()
        outcome = "ok"
    except errors.RejectedInput as exc:
        outcome, error = exc.reason, exc
        if exc.reason not in errors.REASONS or not str(exc):
            outcome = "crash"  # a refusal must have a known reason and say what was wrong
        leaked = [word for word in secrets if word in str(exc)]
        if leaked:
            outcome, error = "crash", Leak(f"{leaked[0]!r} in the message: {exc}")
            error.__cause__ = exc
            error.__traceback__ = exc.__traceback__
    except (Exception, Hang) as exc:  # noqa: BLE001 - what the campaign looks for
        outcome, error = "crash", exc
    elapsed = time.process_time() - started
    if outcome != "crash" and elapsed > timer.seconds:
        outcome, error = "crash", Hang(f"{elapsed:.2f} s of CPU time on one input")
    return outcome, error, elapsed
