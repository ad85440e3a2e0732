"""Matcher, tracker and quality gates: pure logic, fed arrays and `now`."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from agent.core.matcher import Match, Matcher
from agent.core.quality import QualityPolicy, assess, detail, sharpness, yaw_ratio
from agent.core.tracker import Face, Tracker
from protocol.entries import Entry
from tests.conftest import NOW


def entries(n: int = 50, dim: int = 32, per: int = 2, seed: int = 1) -> list[Entry]:
    rng = np.random.default_rng(seed)
    return [
        Entry(f"S{i}", "wanted", None, rng.normal(size=(per, dim)).astype(np.float32))
        for i in range(n)
    ]


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
def test_matcher_finds_the_enrolled_row_with_margin(storage: str) -> None:
    items = entries()
    matcher = Matcher(items, default_threshold=0.5, storage=storage)
    probe = items[17].embeddings[1] + 0.05 * np.random.default_rng(3).normal(size=32)
    match = matcher.match(probe.astype(np.float32))
    assert match is not None and match.subject_ref == "S17"
    assert match.score > 0.95 and match.margin > 0.3
    exact = Matcher(items, 0.5, "float32").entry_scores(probe.astype(np.float32))
    assert np.allclose(matcher.entry_scores(probe.astype(np.float32)), exact, atol=0.02)


def test_matcher_returns_none_below_threshold_and_respects_per_entry_thresholds() -> None:
    items = entries(n=3)
    stranger = np.random.default_rng(99).normal(size=32).astype(np.float32)
    assert Matcher(items, 0.5).match(stranger) is None
    strict = [Entry(e.subject_ref, e.category, 0.999, e.embeddings) for e in items]
    probe = items[0].embeddings[0] + 0.2 * np.random.default_rng(4).normal(size=32)
    assert Matcher(items, 0.5).match(probe.astype(np.float32)) is not None
    assert Matcher(strict, 0.5).match(probe.astype(np.float32)) is None


def test_storage_sizes() -> None:
    items = entries(n=100, dim=128, per=1)
    sizes = {s: Matcher(items, 0.5, s).nbytes for s in ("float32", "float16", "int8")}
    assert sizes["float32"] == 100 * 128 * 4
    assert sizes["float16"] == sizes["float32"] // 2
    assert sizes["int8"] == 100 * 128 + 100 * 4


def _match(ref: str, score: float) -> Match:
    return Match(0, ref, "wanted", score, 0.5, 0.2)


def test_tracker_one_alert_per_track_with_the_best_frame() -> None:
    tracker: Tracker[str] = Tracker(window=timedelta(seconds=1), cooldown=timedelta(0))
    alerts = []
    for i, score in enumerate([0.6, 0.9, 0.7, 0.8]):
        box = (10.0 + 3 * i, 10.0, 60.0 + 3 * i, 60.0)
        alerts += tracker.update(
            [Face(box, _match("S1", score), f"crop{i}")], NOW + timedelta(seconds=0.4 * i)
        )
    assert len(alerts) == 1
    assert alerts[0].crop == "crop1" and alerts[0].match.score == 0.9
    # The same person stays on the track: no second alert.
    for i in range(4, 10):
        box = (10.0 + 3 * i, 10.0, 60.0 + 3 * i, 60.0)
        alerts += tracker.update(
            [Face(box, _match("S1", 0.95), "later")], NOW + timedelta(seconds=0.4 * i)
        )
    assert len(alerts) == 1


def test_tracker_cooldown_across_tracks() -> None:
    tracker: Tracker[str] = Tracker(
        window=timedelta(0), cooldown=timedelta(minutes=5), max_age=timedelta(seconds=1)
    )
    left, right = (0.0, 0.0, 50.0, 50.0), (300.0, 0.0, 350.0, 50.0)
    first = tracker.update([Face(left, _match("S1", 0.8), "a")], NOW)
    again = tracker.update([Face(right, _match("S1", 0.8), "b")], NOW + timedelta(minutes=1))
    later = tracker.update([Face(left, _match("S1", 0.8), "c")], NOW + timedelta(minutes=7))
    assert [len(first), len(again), len(later)] == [1, 0, 1]
    assert tracker.stats.suppressed_cooldown == 1


def test_tracker_holds_nothing_for_unmatched_faces_and_stays_bounded() -> None:
    tracker: Tracker[str] = Tracker(max_tracks=8)
    for i in range(50):
        faces: list[Face[str]] = [
            Face((float(100 * j), float(100 * i), 100.0 * j + 40, 100.0 * i + 40))
            for j in range(20)
        ]
        assert tracker.update(faces, NOW + timedelta(milliseconds=40 * i)) == []
    assert tracker.active_tracks <= 8


def test_quality_gates() -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (200, 200, 3)).astype(np.uint8)
    flat = np.full((200, 200, 3), 128, np.uint8)
    frontal = np.array(
        [[70, 80], [130, 80], [100, 110], [100, 140], [50, 90], [150, 90]], np.float32
    )
    profile = frontal.copy()
    profile[2, 0] = 135
    policy = QualityPolicy()
    box = (50.0, 50.0, 150.0, 150.0)
    assert assess(sharp, box, frontal, policy) is None
    assert assess(flat, box, frontal, policy) == "blurred"
    assert assess(sharp, (50.0, 50.0, 80.0, 80.0), frontal, policy) == "too_small"
    assert assess(sharp, box, profile, policy) == "pose"
    assert yaw_ratio(frontal) == 0.0


def test_detail_ignores_exposure_and_falls_with_blur() -> None:
    rng = np.random.default_rng(1)
    grey = rng.normal(100.0, 20.0, (96, 96)).astype(np.float32)
    dark = (grey * 0.25).astype(np.float32)  # a quarter of the contrast: a dark face
    assert detail(dark) == pytest.approx(detail(grey), rel=1e-4)
    assert sharpness(dark) < sharpness(grey) / 10  # what the box measure would call blurred
    smooth = grey.copy()
    for _ in range(4):  # a binomial [1 2 1] / 4 blur along both axes, a few times
        smooth[1:-1] = (smooth[:-2] + 2 * smooth[1:-1] + smooth[2:]) / 4
        smooth[:, 1:-1] = (smooth[:, :-2] + 2 * smooth[:, 1:-1] + smooth[:, 2:]) / 4
    assert detail(smooth) < detail(grey) / 5
    assert detail(np.full((96, 96), 80.0, np.float32)) == 0.0
