"""Alerts on a track's evidence (issue 16 §1): the template of a track's best K faces, the
margin to the second-best entry, the schedule that fills the template, and what a track holds
and zeroes when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config import ConfigError, parse_config
from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.schedule import Decision, EmbedPolicy, EmbedState, decide, record
from agent.core.template import Template
from agent.core.tracker import Alert, Tracker
from agent.pipeline import DEFAULT_MIN_MARGIN, FramePipeline, Rule
from agent.synthetic_vision import (
    DIM,
    PROFILE_ID,
    ColourEmbedder,
    SquareDetection,
    SquareDetector,
    colour_embedding,
    draw_face,
)
from protocol.entries import Entry
from tests.conftest import NOW

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
STEP = timedelta(seconds=0.1)  # 10 frames/s
K = 3


def unit(v: npt.NDArray[np.floating]) -> F32:
    out: F32 = (v / np.linalg.norm(v)).astype(np.float32)
    return out


class ScriptedEmbedder:
    """The embedder interface, returning the given embeddings in turn (then the last again):
    a person whose frames do not all look alike."""

    id = PROFILE_ID
    dim = DIM

    def __init__(self, embeddings: Sequence[F32]) -> None:
        self.embeddings, self.calls = list(embeddings), 0

    def embed(self, img: U8, det: SquareDetection) -> F32:
        vector = self.embeddings[min(self.calls, len(self.embeddings) - 1)]
        self.calls += 1
        return vector


def stage(
    rule: Rule = Rule.TRACK,
    embedder: ColourEmbedder | ScriptedEmbedder | None = None,
    *,
    min_margin: float = DEFAULT_MIN_MARGIN,
    cooldown: timedelta = timedelta(0),
    window: timedelta = timedelta(0),
) -> FramePipeline:
    tracker: Tracker[U8] = Tracker(
        window=window, cooldown=cooldown, max_age=timedelta(seconds=1.5), faces=K
    )
    return FramePipeline(
        SquareDetector(),
        embedder or ColourEmbedder(),
        QualityPolicy(40, 0, 1.0),
        tracker,
        schedule=EmbedPolicy(reembed_every=10, gain=0.2, fill_every=2),
        rule=rule,
        min_margin=min_margin,
    )


def frame(*faces: tuple[int, int, int]) -> U8:
    """(colour, x, size) faces on a grey 320x128 frame."""
    image = np.full((128, 320, 3), 128, np.uint8)
    for colour, x, size in faces:
        draw_face(image, colour, x, 20, size)
    return image


def walk(
    pipeline: FramePipeline, matcher: Matcher, colour: int, frames: int, start: datetime
) -> list[Alert[U8]]:
    """A person walking towards the camera: the face grows from 40 px by 2 px a frame."""
    alerts: list[Alert[U8]] = []
    for i in range(frames):
        alerts += pipeline.process(
            frame((colour, 10 + 3 * i, 40 + 2 * i)), matcher, start + i * STEP
        )
    return alerts


def pause(pipeline: FramePipeline, matcher: Matcher, start: datetime, frames: int = 20) -> None:
    for i in range(frames):
        assert pipeline.process(frame(), matcher, start + i * STEP) == []


LIST = Matcher(
    [
        Entry("WL-1", "wanted", None, colour_embedding(1)[None, :]),
        Entry("WL-3", "wanted", None, colour_embedding(3)[None, :]),
    ],
    0.7,
)


def test_a_listed_person_alerts_once_per_appearance() -> None:
    pipeline = stage()
    first = walk(pipeline, LIST, 1, 20, NOW)
    pause(pipeline, LIST, NOW + 20 * STEP)  # longer than max_age: the track ends
    second = walk(pipeline, LIST, 1, 20, NOW + 40 * STEP)
    assert [len(first), len(second)] == [1, 1]
    alerts = first + second
    assert {a.match.subject_ref for a in alerts} == {"WL-1"}
    assert alerts[0].track_id != alerts[1].track_id
    for alert, start in zip(alerts, (NOW, NOW + 40 * STEP), strict=True):
        # K faces (new, then every 2nd frame) after the face first reached 40 px.
        assert alert.sized_at == start
        assert alert.raised_at == start + 2 * (K - 1) * STEP
        assert alert.match.score == pytest.approx(1.0) and alert.match.margin > 0.5
        # The probe is the best face the track embedded (the largest: 48 px, grown by 30 %
        # on each side).
        assert alert.crop is not None and alert.crop.shape[:2] == (77, 77)
        assert alert.observed_at == alert.raised_at
    # Once alerted, the track costs detection only: K embeddings per appearance.
    c = pipeline.counters
    assert c.faces_embedded == 2 * K and c.decisions[Decision.ALERTED] == 2 * (20 - 2 * (K - 1) - 1)
    assert c.faces_detected == c.matches + c.faces_discarded and c.matches == 2


def test_the_cooldown_still_holds_across_appearances() -> None:
    pipeline = stage(cooldown=timedelta(minutes=5))
    alerts = walk(pipeline, LIST, 1, 20, NOW)
    pause(pipeline, LIST, NOW + 20 * STEP)
    alerts += walk(pipeline, LIST, 1, 20, NOW + 40 * STEP)
    assert len(alerts) == 1 and pipeline.tracker.stats.suppressed_cooldown == 1


def lookalike(target: F32, score: float, seed: int) -> F32:
    """A unit vector whose cosine with ``target`` is ``score``."""
    noise = np.random.default_rng(seed).normal(size=target.shape)
    noise -= noise @ target * target
    return unit(score * target + np.sqrt(1 - score**2) * unit(noise))


def test_a_stranger_whose_best_frame_passes_but_whose_template_does_not_raises_nothing() -> None:
    wanted = colour_embedding(1)
    # One frame scores 0.8 against WL-1 (over the 0.7 threshold), the others 0.3.
    frames = [lookalike(wanted, 0.8, 0)] + [lookalike(wanted, 0.3, s) for s in range(1, 40)]
    one_frame = stage(Rule.FRAME, ScriptedEmbedder(frames))
    alerts = walk(one_frame, LIST, 2, 30, NOW)
    alerts += one_frame.tracker.flush(NOW + 30 * STEP)
    assert [a.match.subject_ref for a in alerts] == ["WL-1"]  # the old rule alerts on it
    on_track = stage(Rule.TRACK, ScriptedEmbedder(frames))
    assert walk(on_track, LIST, 2, 30, NOW) == []
    assert on_track.tracker.flush(NOW + 30 * STEP) == []
    c = on_track.counters
    assert c.matches == 0 and c.faces_discarded == c.faces_detected == 30
    # The template filled (40, 44, 48 px), then only faces 20 % better than the best so far
    # were embedded (58, 70, 86 px): the cost follows quality, not time in view.
    assert c.decisions[Decision.FILL] == K - 1 and c.decisions[Decision.BETTER] == 3
    assert c.faces_embedded == K + 3


def test_a_listed_person_with_a_poor_frame_still_alerts_on_the_template() -> None:
    wanted = colour_embedding(1)
    frames = [lookalike(wanted, 0.95, 1), lookalike(wanted, 0.55, 2), lookalike(wanted, 0.9, 3)]
    alerts = walk(stage(Rule.TRACK, ScriptedEmbedder(frames)), LIST, 2, 10, NOW)
    assert [a.match.subject_ref for a in alerts] == ["WL-1"]
    assert 0.7 <= alerts[0].match.score < 0.95  # the mean of three, not the best frame


def test_an_alert_needs_a_margin_to_the_second_best_entry() -> None:
    a = colour_embedding(1)
    twin = lookalike(a, 0.98, 5)  # an entry nearly identical to WL-1
    close = Matcher(
        [Entry("WL-1", "wanted", None, a[None, :]), Entry("WL-9", "wanted", None, twin[None, :])],
        0.7,
    )
    assert walk(stage(min_margin=0.05), close, 1, 10, NOW) == []
    alerts = walk(stage(min_margin=0.0), close, 1, 10, NOW)
    assert len(alerts) == 1 and alerts[0].match.margin == pytest.approx(0.02, abs=1e-4)
    assert close.match(a, min_margin=0.05) is None and close.match(a) is not None


def all_zero(arrays: list[npt.NDArray[np.generic]]) -> bool:
    return all(not np.any(a) for a in arrays)


def test_what_a_track_held_is_zeroed_when_it_ends() -> None:
    pipeline = stage()
    # A passer-by (colour 2, not listed) beside the listed person (colour 1).
    for i in range(8):
        image = frame((1, 10, 40 + 2 * i), (2, 200, 40 + 2 * i))
        pipeline.process(image, LIST, NOW + i * STEP)
    listed, stranger = pipeline.tracker.tracks
    assert listed.alerted == {"WL-1"}
    held = {t.track_id: t.template.arrays for t in (listed, stranger)}
    # In memory while the track lives: K unit embeddings and the best face's pixels.
    assert all(len(arrays) == 2 and not all_zero(arrays) for arrays in held.values())
    assert stranger.template.size == K and stranger.template.crop is not None
    pause(pipeline, LIST, NOW + 8 * STEP)
    assert pipeline.tracker.active_tracks == 0
    for track in (listed, stranger):
        assert track.ended and all_zero(held[track.track_id])  # overwritten, not just dropped
        assert track.template.size == 0 and track.template.crop is None
        assert track.template.arrays == [] and track.sized_at is None and track.pending == {}


def test_the_alerts_probe_outlives_its_track_and_a_new_list_zeroes_templates() -> None:
    pipeline = stage()
    alerts = walk(pipeline, LIST, 1, 6, NOW)
    (track,) = pipeline.tracker.tracks
    crop = alerts[0].crop
    assert len(alerts) == 1 and crop is not None and crop is not track.template.crop
    probe = crop.copy()
    pause(pipeline, LIST, NOW + 6 * STEP)
    assert track.ended and np.array_equal(crop, probe) and probe.any()
    # A passer-by's template is zeroed when the watchlist changes, and filled again.
    walk(pipeline, LIST, 2, 6, NOW + 30 * STEP)
    (passer,) = pipeline.tracker.tracks
    held = passer.template.arrays
    pipeline.tracker.forget_subjects()
    assert all_zero(held) and passer.template.size == 0 and passer.embed.last_frame is None


def test_tracks_pushed_out_by_the_bound_are_zeroed() -> None:
    tracker: Tracker[U8] = Tracker(max_tracks=1, faces=2)
    a, b = tracker.assign([(0.0, 0.0, 40.0, 40.0), (200.0, 0.0, 240.0, 40.0)], NOW)
    a.template.add(colour_embedding(0), 0.5)
    a.template.offer_crop(0.5, np.full((8, 8, 3), 200, np.uint8), NOW)
    held = a.template.arrays
    tracker.advance(NOW)
    assert tracker.tracks == (b,) and a.ended and all_zero(held)


# -- the template and the schedule, pure --------------------------------------------------


def test_the_template_keeps_the_best_k_faces_and_is_their_normalised_mean() -> None:
    template: Template[str] = Template(2)
    e = [colour_embedding(i) for i in range(4)]
    assert template.add(3 * e[0], 0.2) and template.add(e[1], 0.5) and template.full
    assert template.floor == 0.2
    assert np.allclose(template.vector(), unit(e[0] + e[1]), atol=1e-6)
    assert not template.add(e[2], 0.1)  # worse than both: changes nothing
    assert template.add(e[3], 0.9) and template.floor == 0.5  # replaces the weakest (e[0])
    assert np.allclose(template.vector(), unit(e[1] + e[3]), atol=1e-6)
    assert not template.add(np.zeros(DIM, np.float32), 1.0)
    assert not template.add(np.full(DIM, np.nan, np.float32), 1.0)
    with pytest.raises(ValueError):
        Template(0)
    with pytest.raises(ValueError):
        Template[str](2).vector()


@given(
    st.lists(st.floats(0.01, 1.0, allow_nan=False), min_size=1, max_size=12, unique=True),
    st.integers(1, 5),
)
def test_the_template_holds_the_top_k_qualities(qualities: list[float], k: int) -> None:
    template: Template[str] = Template(k)
    for i, quality in enumerate(qualities):
        template.add(colour_embedding(i % 8) + 0.01 * i, quality)
    kept = sorted(qualities)[-k:]
    assert template.size == len(kept)
    assert template.floor == (min(kept) if len(qualities) >= k else 0.0)
    assert float(np.linalg.norm(template.vector())) == pytest.approx(1.0, abs=1e-5)


def test_the_schedule_fills_the_template_then_embeds_only_what_can_change_it() -> None:
    policy = EmbedPolicy(reembed_every=3, gain=0.2, fill_every=2)
    state, template = EmbedState(), Template[str](2)
    assert decide(state, 0.5, 1, alerted=False, policy=policy, template=template) is Decision.NEW
    record(state, 0.5, 1)
    template.add(colour_embedding(0), 0.5)
    assert decide(state, 0.5, 2, alerted=False, policy=policy, template=template) is Decision.HELD
    assert decide(state, 0.5, 3, alerted=False, policy=policy, template=template) is Decision.FILL
    assert decide(state, 0.7, 2, alerted=False, policy=policy, template=template) is Decision.BETTER
    record(state, 0.5, 3)
    template.add(colour_embedding(1), 0.4)
    # Full: the periodic re-embedding no longer applies; only a face > 1.2 x the best does.
    for frame_index, quality in ((6, 0.45), (60, 0.6)):
        assert (
            decide(state, quality, frame_index, alerted=False, policy=policy, template=template)
            is Decision.HELD
        )
    assert (
        decide(state, 0.61, 4, alerted=False, policy=policy, template=template) is Decision.BETTER
    )
    assert decide(state, 0.9, 4, alerted=True, policy=policy, template=template) is Decision.ALERTED
    with pytest.raises(ValueError):
        EmbedPolicy(fill_every=0)


def test_a_person_standing_still_costs_k_embeddings() -> None:
    pipeline = stage()
    for i in range(50):  # a passer-by standing in view for 5 s
        pipeline.process(frame((2, 100, 64)), LIST, NOW + i * STEP)
    assert pipeline.counters.faces_embedded == K
    one_frame = stage(Rule.FRAME)
    for i in range(50):
        one_frame.process(frame((2, 100, 64)), LIST, NOW + i * STEP)
    assert one_frame.counters.faces_embedded == 1 + 49 // 10  # new, then every 10th frame


def test_the_decision_is_configured_under_matching() -> None:
    head = '[device]\nid = "cam-01"\nsite = "kx"\n[broker]\nhost = "broker"\n'
    path = Path("/etc/lfr-agent/agent.toml")
    default = parse_config(head, path).matching
    assert (default.decision, default.template_faces, default.template_every) == ("track", K, 2)
    assert default.min_margin == DEFAULT_MIN_MARGIN
    tuned = parse_config(
        head + '[matching]\ndecision = "frame"\ntemplate_faces = 5\nmin_margin = 0.1\n', path
    ).matching
    assert (Rule(tuned.decision), tuned.template_faces, tuned.min_margin) == (Rule.FRAME, 5, 0.1)
    for bad, message in (
        ('decision = "vote"', "decision: must be one of track, frame"),
        ("template_faces = 0", "template_faces: must be at least 1"),
        ("template_every = 0", "template_every: must be at least 1"),
        ("min_margin = -0.1", "min_margin: must not be negative"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config(head + f"[matching]\n{bad}\n", path)
