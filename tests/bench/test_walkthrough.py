"""The walk-through bench's ground truth: who walks when, where a face reaches the minimum
size, and how events are attributed to people (alerted, missed, false)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tools.bench.walkthrough import interval, score, upper_bound
from tools.bench.walkthrough_scene import (
    FACE_FROM,
    FACE_TO,
    HEIGHT,
    MIN_FACE_PX,
    WALK_FRAMES,
    WIDTH,
    Person,
    Walker,
    paste,
    placement,
)


def walker(name: str, ref: str | None, first: int = 0) -> Walker:
    person = Person(name, ref, (), (Path(f"{name}.jpg"),))
    return Walker(person, 0, first, (np.zeros((4, 4, 3), np.uint8),), ((0.0, 0.0, 4.0, 4.0),), 1.0)


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


def test_the_ground_truth_face_box_is_where_paste_draws_the_face() -> None:
    # A photo with a bright square "face" at a known box; pasted, the box must cover it.
    image = np.zeros((250, 250, 3), np.uint8)
    image[90:160, 95:155] = 255
    person = Person("a", "WL-1", (), (Path("a.jpg"),))
    w = Walker(person, 1, 0, (image,), ((95.0, 90.0, 155.0, 160.0),), 1.0)
    for index in (0, WALK_FRAMES // 2, WALK_FRAMES - 1):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        paste(frame, w, index, lanes=3)
        x0, y0, x1, y1 = placement(w, index, 3)[1]
        assert y1 - y0 == pytest.approx(w.height(index))
        bright = np.argwhere(frame[..., 0] > 128)
        (top, left), (bottom, right) = bright.min(axis=0), bright.max(axis=0)
        assert abs(top - y0) <= 2 and abs(left - x0) <= 2
        assert abs(bottom + 1 - y1) <= 2 and abs(right + 1 - x1) <= 2


def test_a_walker_with_several_photos_shows_each_in_turn() -> None:
    one, two = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    box = (0.0, 0.0, 4.0, 4.0)
    person = Person("a", "WL-1", (), (Path("a1.jpg"), Path("a2.jpg")))
    w = Walker(person, 0, 5, (one, two), (box, box), 1.0)
    shown = [w.photo(i)[0] is two for i in range(w.first, w.last + 1)]
    assert shown == [False] * math.ceil(WALK_FRAMES / 2) + [True] * (WALK_FRAMES // 2)


def test_the_walkers_come_from_the_calibrations_held_out_half_only() -> None:
    """The walk-through is the held-out check of the 1:N thresholds: no walker, listed or
    stranger, and no padding entry is an identity the calibration used."""
    from tools.bench.scenes import LFW
    from tools.bench.walkthrough_scene import PAIRS, choose_people
    from tools.evaluation.calibration_1n import half
    from tools.evaluation.lfw import pair_identities

    if not LFW.is_dir() or not PAIRS.exists():
        pytest.skip("needs ../shared/datasets (LFW and its pairs)")
    named = pair_identities(PAIRS)
    people = choose_people(50, 1000, 1000, 16, walk_photos=2)
    assert len({p.name for p in people}) == len(people) == 2000
    assert all(p.name in named and half(p.name) == 1 for p in people)
    listed = [p for p in people if p.walk and p.ref is not None]
    assert len(listed) == 50 and all(len(p.walk) == 2 for p in listed)
    assert all(not set(p.walk) & set(p.enrol) for p in listed)


def test_clips_of_different_walk_photos_can_list_the_same_people() -> None:
    from tools.bench.scenes import LFW
    from tools.bench.walkthrough_scene import PAIRS, choose_people

    if not LFW.is_dir() or not PAIRS.exists():
        pytest.skip("needs ../shared/datasets (LFW and its pairs)")

    def listed(walk_photos: int, listed_photos: int | None) -> list[tuple[str, int]]:
        people = choose_people(20, 50, 100, 16, walk_photos, listed_photos=listed_photos)
        return [(p.name, len(p.walk)) for p in people if p.ref is not None and p.walk]

    one, three = listed(1, 5), listed(3, None)
    assert [n for n, _ in one] == [n for n, _ in three]
    assert {w for _, w in one} == {1} and {w for _, w in three} == {3}
    with pytest.raises(ValueError, match="at least 5 photos"):
        choose_people(20, 50, 100, 16, 3, listed_photos=4)


def test_every_variant_is_a_valid_agent_config_after_the_matching_section() -> None:
    from agent.app import matching_policy
    from agent.config import parse_config
    from tests.unit.test_agent_edges import MINIMAL
    from tools.bench.walkthrough import VARIANTS

    for name, extra in VARIANTS.items():
        text = MINIMAL + '\n# walkthrough\n[matching]\ndecision = "track"\n' + extra
        config = parse_config(text, Path(f"{name}.toml"))
        assert matching_policy(config).coherence == (name != "fixed")


def test_the_alert_rate_interval_is_two_sided_clopper_pearson() -> None:
    lo, hi = interval(184, 200)  # scipy.stats.beta.ppf(0.025, 184, 17), .ppf(0.975, 185, 16)
    assert abs(lo - 0.873335) < 1e-5 and abs(hi - 0.953582) < 1e-5
    lo, hi = interval(50, 50)
    assert hi == 1.0 and abs(lo - 0.025 ** (1 / 50)) < 1e-9
    assert interval(0, 50)[0] == 0.0
    a, b = interval(47, 50)
    assert a < 0.94 < b and b - a > interval(188, 200)[1] - interval(188, 200)[0]
