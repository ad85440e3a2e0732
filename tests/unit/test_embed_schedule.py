"""Compute per person: which tracked faces are embedded (pure decisions, the frame index as
the clock), the quality score they compare, and what a track holds and forgets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from agent.config import ConfigError, parse_config
from agent.core.matcher import Match, Matcher
from agent.core.quality import FaceMeasure, QualityPolicy, measure, score
from agent.core.schedule import Decision, EmbedPolicy, EmbedState, decide, record
from agent.core.tracker import Tracker
from agent.pipeline import FramePipeline, Rule
from agent.synthetic_vision import ColourEmbedder, SquareDetector, colour_embedding, draw_face
from protocol.entries import Entry
from tests.conftest import NOW

U8 = np.uint8
POLICY = EmbedPolicy(reembed_every=10, gain=0.2)


def test_a_new_track_is_embedded_and_then_held_until_something_improves() -> None:
    state = EmbedState()
    assert decide(state, 0.5, 1, alerted=False, policy=POLICY) is Decision.NEW
    record(state, 0.5, 1)
    assert (state.best, state.last_frame) == (0.5, 1)
    assert decide(state, 0.5, 2, alerted=False, policy=POLICY) is Decision.HELD
    assert decide(state, 0.59, 3, alerted=False, policy=POLICY) is Decision.HELD  # < 20 % gain
    assert decide(state, 0.61, 3, alerted=False, policy=POLICY) is Decision.BETTER
    assert decide(state, 0.1, 10, alerted=False, policy=POLICY) is Decision.HELD
    assert decide(state, 0.1, 11, alerted=False, policy=POLICY) is Decision.DUE
    record(state, 0.1, 11)  # a worse face re-embedded on schedule does not lower the bar
    assert (state.best, state.last_frame) == (0.5, 11)
    assert [d.embed for d in Decision] == [True, True, True, True, False, False]


def test_an_alerted_track_is_never_embedded_and_zero_disables_the_timer() -> None:
    state = EmbedState(best=0.2, last_frame=1)
    for frame, quality in ((2, 0.9), (500, 0.2)):
        assert decide(state, quality, frame, alerted=True, policy=POLICY) is Decision.ALERTED
    assert decide(EmbedState(), 0.9, 1, alerted=True, policy=POLICY) is Decision.ALERTED
    never = EmbedPolicy(reembed_every=0)
    assert decide(state, 0.2, 10_000, alerted=False, policy=never) is Decision.HELD
    every = EmbedPolicy(reembed_every=1)
    assert decide(state, 0.0, 2, alerted=False, policy=every) is Decision.DUE
    with pytest.raises(ValueError):
        EmbedPolicy(reembed_every=-1)


def test_the_quality_score_grows_with_size_sharpness_and_frontalness() -> None:
    base = FaceMeasure(56.0, 60.0, 0.0)
    assert score(base) == pytest.approx(0.25)  # half size x half sharp x frontal
    assert score(FaceMeasure(112.0, 60.0, 0.0)) == pytest.approx(0.5)
    assert score(FaceMeasure(300.0, 60.0, 0.0)) == score(FaceMeasure(112.0, 60.0, 0.0))
    assert score(FaceMeasure(56.0, 600.0, 0.0)) > score(base) > score(FaceMeasure(56.0, 6.0, 0.0))
    assert score(FaceMeasure(56.0, 60.0, 0.3)) == pytest.approx(0.25 * 0.7)
    for degenerate in (FaceMeasure(0.0, 60.0, 0.0), FaceMeasure(56.0, 0.0, 0.0)):
        assert score(degenerate) == 0.0
    assert score(FaceMeasure(56.0, 60.0, float("inf"))) == 0.0
    assert score(FaceMeasure(56.0, 60.0, float("nan"))) == 0.0
    assert 0.0 <= score(FaceMeasure(1e6, 1e9, 0.0)) <= 1.0


def test_the_score_of_real_pixels_falls_with_blur() -> None:
    rng = np.random.default_rng(0)
    # Low-contrast fine texture, like skin, and the same seen through an 8 px blur.
    sharp = np.clip(rng.normal(128, 3, (200, 200, 3)), 0, 255).astype(U8)
    blurred = np.repeat(np.repeat(sharp[::8, ::8], 8, axis=0), 8, axis=1)
    box, keypoints = (40.0, 40.0, 160.0, 160.0), np.zeros((6, 2), np.float32)
    keypoints[:3] = [[70, 80], [130, 80], [100, 110]]
    own = [score(measure(image, box, keypoints, detail_px=0)) for image in (sharp, blurred)]
    assert own[0] > 5 * own[1]
    # The default also reads the face shrunk to 32 px, where 8 px blocks still show some
    # detail: the blurred face gains a little, and still scores far below the sharp one.
    assert score(measure(sharp, box, keypoints)) > 4 * score(measure(blurred, box, keypoints))
    assert measure(sharp, (300.0, 300.0, 400.0, 400.0), keypoints).size_px == 0.0  # off frame


def test_a_track_forgets_everything_when_it_ends() -> None:
    tracker: Tracker[str] = Tracker(window=timedelta(0), max_age=timedelta(seconds=1))
    box = (10.0, 10.0, 60.0, 60.0)
    (track,) = tracker.assign([box], NOW)
    record(track.embed, 0.7, tracker.frame)
    tracker.offer(track, Match(0, "S1", "wanted", 0.9, 0.5, 0.2), "crop", NOW)
    assert len(tracker.advance(NOW)) == 1 and track.alerted == {"S1"}
    assert tracker.assign([box], NOW + timedelta(milliseconds=40)) == [track]
    assert tracker.advance(NOW + timedelta(seconds=5)) == [] and tracker.active_tracks == 0
    assert track.ended and track.alerted == set() and track.pending == {}
    assert (track.embed.best, track.embed.last_frame) == (0.0, None)
    assert track.box == (0.0, 0.0, 0.0, 0.0)
    (again,) = tracker.assign([box], NOW + timedelta(seconds=6))
    assert again is not track and again.embed.last_frame is None


def test_tracks_pushed_out_by_the_bound_are_cleared_too() -> None:
    tracker: Tracker[str] = Tracker(max_tracks=2)
    boxes = [(float(100 * i), 0.0, float(100 * i + 40), 40.0) for i in range(3)]
    tracks = tracker.assign(boxes, NOW)
    for track in tracks:
        record(track.embed, 0.5, 1)
    tracker.advance(NOW)
    assert tracker.active_tracks == 2 and sum(t.ended for t in tracks) == 1
    assert all(t.embed.last_frame is None for t in tracks if t.ended)


# -- the pipeline: detection every frame, embedding when it pays ----------------------------


def pipeline(
    schedule: EmbedPolicy, window: timedelta = timedelta(seconds=1), rule: Rule = Rule.FRAME
) -> FramePipeline:
    tracker: Tracker[np.ndarray] = Tracker(window=window, cooldown=timedelta(hours=1))
    return FramePipeline(
        SquareDetector(),
        ColourEmbedder(),
        QualityPolicy(10, 0, 1.0),
        tracker,
        schedule=schedule,
        rule=rule,
    )


def frame(*faces: tuple[int, int, int, int]) -> np.ndarray:
    image = np.full((240, 320, 3), 128, U8)
    for colour, x, y, size in faces:
        draw_face(image, colour, x, y, size)
    return image


LISTED = Matcher([Entry("WL-1", "wanted", None, colour_embedding(1)[None, :])], 0.5)


def test_a_tracks_later_frames_are_not_embedded_when_nothing_improved() -> None:
    stage = pipeline(EmbedPolicy(reembed_every=0))
    for i in range(8):  # a passer-by (colour 2, not listed), standing still
        assert (
            stage.process(frame((2, 100, 60, 64)), LISTED, NOW + i * timedelta(seconds=0.1)) == []
        )
    c = stage.counters
    assert (c.faces_detected, c.faces_embedded, c.matches, c.faces_discarded) == (8, 1, 0, 8)
    assert c.decisions == {Decision.NEW: 1, Decision.HELD: 7}
    assert c.cpu_s["detect"] >= 0.0 and set(c.cpu_s) == {"detect", "embed", "match"}


def test_a_better_face_and_the_timer_embed_again() -> None:
    stage = pipeline(EmbedPolicy(reembed_every=4, gain=0.2))
    # Walking towards the camera: 40 px, 42 (held), 64 (better), then still for 5 frames.
    sizes = [40, 42, 64, 64, 64, 64, 64, 64]
    for size in sizes:
        stage.process(frame((2, 120 - size // 2, 100 - size // 2, size)), LISTED, NOW)
    c = stage.counters
    assert c.decisions == {Decision.NEW: 1, Decision.HELD: 5, Decision.BETTER: 1, Decision.DUE: 1}
    assert c.faces_embedded == 3 and c.faces_detected == c.matches + c.faces_discarded


def test_a_track_that_alerted_costs_detection_only_until_the_watchlist_changes() -> None:
    stage = pipeline(EmbedPolicy(reembed_every=2), window=timedelta(0))
    alerts = []
    for i in range(6):  # the listed person (colour 1) beside a passer-by (colour 2)
        image = frame((1, 20, 60, 64), (2, 200, 60, 64))
        alerts += stage.process(image, LISTED, NOW + i * timedelta(seconds=0.1))
    c = stage.counters
    assert len(alerts) == 1 and alerts[0].match.subject_ref == "WL-1"
    assert c.matches == 1 and c.decisions[Decision.ALERTED] == 5
    assert c.faces_embedded == 1 + 3  # the passer-by: new, then every 2nd frame
    stage.tracker.forget_subjects()  # a new list: every track is looked at again
    stage.process(frame((1, 20, 60, 64), (2, 200, 60, 64)), LISTED, NOW + timedelta(seconds=1))
    assert c.decisions[Decision.NEW] == 4 and c.faces_embedded == 6


def test_the_schedule_is_configured_under_matching() -> None:
    head = '[device]\nid = "cam-01"\nsite = "kx"\n[broker]\nhost = "broker"\n'
    path = Path("/etc/lfr-agent/agent.toml")
    default = parse_config(head, path).matching
    assert EmbedPolicy(default.reembed_every, default.reembed_gain) == EmbedPolicy()
    tuned = parse_config(head + "[matching]\nreembed_every = 3\nreembed_gain = 0.5\n", path)
    assert (tuned.matching.reembed_every, tuned.matching.reembed_gain) == (3, 0.5)
    with pytest.raises(ConfigError, match="reembed_every: must not be negative"):
        parse_config(head + "[matching]\nreembed_every = -1\n", path)
