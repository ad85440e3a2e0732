"""The tracker follows people who move more than a face size per frame (a concourse camera at
10 frames/s): velocity prediction, a wider search for a track seen once, and lanes kept apart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import ConfigError, parse_config
from agent.core.tracker import Box, Tracker
from tests.conftest import NOW

STEP = timedelta(milliseconds=100)  # 10 frames/s


def walk(x: float, y: float, size: float, frames: int, dx: float, grow: float) -> list[Box]:
    """A face moving ``dx`` px and growing ``grow`` px per frame (the walk-through's geometry)."""
    boxes = []
    for i in range(frames):
        s = size + grow * i
        cx = x + dx * i
        boxes.append((cx - s / 2, y - s / 2, cx + s / 2, y + s / 2))
    return boxes


def track_ids(tracker: Tracker[str], lanes: list[list[Box]]) -> list[set[int]]:
    """Feed the lanes frame by frame; the track ids each lane's face was given."""
    ids: list[set[int]] = [set() for _ in lanes]
    for i in range(max(len(lane) for lane in lanes)):
        now = NOW + i * STEP
        boxes = [lane[i] for lane in lanes if i < len(lane)]
        tracks = tracker.assign(boxes, now)
        for lane_ids, track in zip(ids, tracks, strict=False):
            lane_ids.add(track.track_id)
        tracker.advance(now)
    return ids


def test_a_walker_moving_a_face_size_and_a_half_per_frame_is_one_track() -> None:
    # 61 px per frame at 28-120 px: the walk-through bench's walkers.
    lane = walk(100, 300, 28, 25, 60.8, 3.8)
    assert track_ids(Tracker(), [lane]) == [{1}]
    # The former rule (last box, 0.75 face sizes) split the same walker into many tracks.
    assert len(track_ids(Tracker(velocity=False), [lane])[0]) > 6


def test_walkers_in_neighbouring_lanes_keep_their_own_tracks() -> None:
    lanes = [walk(100, 60 + 146 + 293 * n, 28, 25, 60.8, 3.8) for n in range(3)]
    ids = track_ids(Tracker(), lanes)
    assert [len(i) for i in ids] == [1, 1, 1]
    assert len(set.union(*ids)) == 3


def test_two_people_crossing_the_same_spot_from_either_side_stay_apart() -> None:
    right = walk(200, 500, 60, 12, 40.0, 0.0)
    left = walk(200 + 40 * 11, 500, 60, 12, -40.0, 0.0)
    ids = track_ids(Tracker(), [right, left])
    assert ids[0].isdisjoint(ids[1])


def test_a_track_ends_after_max_age_and_its_velocity_goes_with_it() -> None:
    tracker: Tracker[str] = Tracker(max_age=timedelta(seconds=1))
    (track,) = tracker.assign([(0.0, 0.0, 40.0, 40.0)], NOW)
    tracker.assign([(50.0, 0.0, 90.0, 40.0)], NOW + STEP)
    assert track.velocity is not None and abs(track.velocity[0] - 500.0) < 1e-6
    assert track.predicted(NOW + 2 * STEP)[0] == 100.0
    tracker.advance(NOW + timedelta(seconds=3))
    assert tracker.active_tracks == 0 and track.ended and track.velocity is None


@settings(max_examples=60, deadline=None)
@given(
    speed=st.floats(0.0, 1.6),  # face sizes per frame
    size=st.floats(30.0, 120.0),
    vertical=st.floats(-0.3, 0.3),
)
def test_any_steady_walker_within_reach_is_one_track(
    speed: float, size: float, vertical: float
) -> None:
    lane = walk(150, 540, size, 15, speed * size, 0.0)
    lane = [
        (b[0], b[1] + vertical * size * i, b[2], b[3] + vertical * size * i)
        for i, b in enumerate(lane)
    ]
    assert track_ids(Tracker(), [lane]) == [{1}]


def test_tracking_and_detail_are_configured() -> None:
    head = '[device]\nid = "cam-01"\nsite = "kx"\n[broker]\nhost = "broker"\n'
    path = Path("/etc/lfr-agent/agent.toml")
    default = parse_config(head, path)
    assert (default.tracking.velocity, default.tracking.search_factor) == (True, 2.5)
    assert default.quality.detail_px == 32
    former = parse_config(
        head + "[tracking]\nvelocity = false\nsearch_factor = 0.75\n[quality]\ndetail_px = 0\n",
        path,
    )
    assert (former.tracking.velocity, former.quality.detail_px) == (False, 0)
    with pytest.raises(ConfigError, match=r"tracking\.search_factor: must not be negative"):
        parse_config(head + "[tracking]\nsearch_factor = -1\n", path)
    with pytest.raises(ConfigError, match=r"tracking\.velocity: must be true or false"):
        parse_config(head + '[tracking]\nvelocity = "yes"\n', path)
