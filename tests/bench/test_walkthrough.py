"""The walk-through bench's ground truth: who walks when, where a face reaches the minimum
size, and how events are attributed to people (alerted, missed, false)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tools.bench.walkthrough import (
    FACE_FROM,
    FACE_TO,
    MIN_FACE_PX,
    WALK_FRAMES,
    Person,
    Walker,
    score,
    upper_bound,
)


def walker(name: str, ref: str | None, first: int = 0) -> Walker:
    person = Person(name, ref, (), Path(f"{name}.jpg"))
    return Walker(person, 0, first, np.zeros((4, 4, 3), np.uint8), (0.0, 0.0, 4.0, 4.0), 1.0)


def test_a_walkers_face_grows_and_reaches_the_minimum_size_once() -> None:
    w = walker("a", None, first=10)
    assert (w.first, w.last) == (10, 10 + WALK_FRAMES - 1)
    assert (w.height(w.first), w.height(w.last)) == (FACE_FROM, FACE_TO)
    assert w.height(w.sized) >= MIN_FACE_PX > w.height(w.sized - 1)


def test_events_are_attributed_per_person() -> None:
    walkers = [walker("a", "WL-1"), walker("b", "WL-2"), walker("c", None), walker("d", None)]
    # WL-1 alerted twice (the second is false), WL-2 missed, WL-9 never walked (false).
    outcome = score(walkers, ["WL-1", "WL-9", "WL-1"])
    assert (outcome.alerted, outcome.missed, outcome.false_alerts) == (1, 1, 2)
    assert (outcome.listed, outcome.strangers) == (2, 2)
    assert score(walkers, []).missed == 2


def test_the_upper_bound_on_a_rate_is_clopper_pearsons() -> None:
    # None seen in n: the closed form 1 - 0.05^(1/n) (about 3/n, the rule of three).
    assert abs(upper_bound(0, 1000) - (1 - 0.05 ** (1 / 1000))) < 1e-9
    # k seen: at the bound, seeing at most k has probability 0.05.
    n, k = 1000, 2
    p = upper_bound(k, n)
    at_most = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
    assert abs(at_most - 0.05) < 1e-6
    assert upper_bound(0, 100) > upper_bound(0, 1000)
    assert upper_bound(5, 5) == 1.0
