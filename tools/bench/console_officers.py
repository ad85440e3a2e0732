"""The people of the console load test, as threads: officers who work the queue, and a queue
watcher that notes when each alert first shows in the queue.

An officer polls the queue every ``poll`` s (as the page does), takes the newest undecided
alert nobody has taken, opens it (page and probe), looks for ``think`` s and decides. The
officers also share a set of taken alerts, so that they spread over the queue as people
looking at one screen do; the console's own database lock shows as a refused decision,
counted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from tools.bench.console_ui import ConsoleError, OfficerClient

log = logging.getLogger(__name__)
OUTCOME_MIX = (("false_alert", 0.6), ("no_action", 0.25), ("confirmed", 0.15))


@dataclass
class Desk:
    """What the officers share: the alerts taken, what each decided, errors."""

    taken: set[str] = field(default_factory=set)
    decided: dict[str, str] = field(default_factory=dict)  # event id: officer
    refused: int = 0  # decisions the console did not record (e.g. locked by another)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, pending: list[str]) -> str | None:
        with self.lock:
            for event_id in pending:
                if event_id not in self.taken:
                    self.taken.add(event_id)
                    return event_id
        return None

    def error(self, who: str, exc: Exception) -> None:
        with self.lock:
            self.errors.append(f"{who}: {type(exc).__name__}: {exc}")
        log.warning("%s: %s", who, exc)


def officer(
    client: OfficerClient,
    name: str,
    password: str,
    desk: Desk,
    stop: threading.Event,
    *,
    poll: float = 1.0,
    think: float = 2.0,
    seed: int = 0,
) -> None:
    """One officer's shift until ``stop``."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix of decisions, not secrets
    try:
        client.login(name, password)
    except (ConsoleError, OSError) as exc:
        desk.error(name, exc)
        return
    while not stop.is_set():
        started = time.monotonic()
        try:
            queue = client.queue()
            event_id = desk.take(queue.pending)
            if event_id is not None:
                csrf = client.open(event_id)
                client.probe(event_id)
                stop.wait(think * rng.uniform(0.5, 1.5))
                outcome = rng.choices([o for o, _ in OUTCOME_MIX], [w for _, w in OUTCOME_MIX])
                status = client.decide(event_id, outcome[0], csrf)
                with desk.lock:
                    if status == 303:
                        desk.decided[event_id] = name
                    else:
                        desk.refused += 1
                continue  # straight back to the queue, as an officer with work waiting
        except (ConsoleError, OSError) as exc:
            desk.error(name, exc)
        stop.wait(max(0.0, poll - (time.monotonic() - started)))
    client.close()


def watcher(
    client: OfficerClient,
    name: str,
    password: str,
    desk: Desk,
    stop: threading.Event,
    *,
    seen: dict[str, float],
    poll: float = 1.0,
) -> None:
    """Poll the queue every ``poll`` s; note when each event id first shows (wall clock, at
    the response). What an officer's screen would show, at the page's own polling rate."""
    try:
        client.login(name, password)
    except (ConsoleError, OSError) as exc:
        desk.error(name, exc)
        return
    while not stop.is_set():
        started = time.monotonic()
        try:
            queue = client.queue()
            at = time.time()
            for event_id in queue.shown:
                seen.setdefault(event_id, at)
        except (ConsoleError, OSError) as exc:
            desk.error(name, exc)
        stop.wait(max(0.0, poll - (time.monotonic() - started)))
    client.close()
