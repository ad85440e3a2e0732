"""A big face magnified on its way to the frame is soft at its own pixels but carries as much
detail as when seen smaller: measured shrunk to 32 px it is not called blurred, and it scores
above the same face seen smaller (issue 16: the walk-through's tracks preferred distant faces)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from agent.core.quality import QualityPolicy, gate, grey_of, measure, score, shrink
from agent.core.tracker import Box

FRONTAL = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.5, 0.75], [0.1, 0.45], [0.9, 0.45]])


def face(side: int, seed: int = 0, source: int = 40) -> tuple[npt.NDArray[np.uint8], Box]:
    """A textured ``source``-px face magnified to ``side`` px, on a 400 x 400 frame."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (source, source, 3)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR))
    frame = np.full((400, 400, 3), 90, np.uint8)
    frame[50 : 50 + side, 50 : 50 + side] = big
    return frame, (50.0, 50.0, 50.0 + side, 50.0 + side)


def keypoints(box: Box) -> npt.NDArray[np.float32]:
    x0, y0, x1, y1 = box
    return (FRONTAL * [x1 - x0, y1 - y0] + [x0, y0]).astype(np.float32)


def test_a_magnified_face_is_not_blurred_and_outscores_its_smaller_self() -> None:
    big_frame, big_box = face(120)
    small_frame, small_box = face(40)
    big = measure(big_frame, big_box, keypoints(big_box))
    small = measure(small_frame, small_box, keypoints(small_box))
    # At its own pixels the magnified face looks far softer than the small one...
    assert big.sharpness < small.sharpness / 5
    # ... shrunk to 32 px it carries the detail it has.
    assert big.detail > 5 * big.sharpness and big.crispness == big.detail
    assert small.detail > 0 and small.crispness >= small.sharpness
    assert gate(big, QualityPolicy(min_sharpness=big.sharpness * 2)) is None
    assert score(big) > score(small)
    # detail_px = 0: own pixels only (the former measure).
    former = measure(big_frame, big_box, keypoints(big_box), detail_px=0)
    assert former.detail == 0.0 and former.crispness == former.sharpness
    assert gate(former, QualityPolicy(min_sharpness=big.sharpness * 2)) == "blurred"


def test_a_genuinely_blurred_face_stays_blurred() -> None:
    flat = np.full((400, 400, 3), 120, np.uint8)
    box = (50.0, 50.0, 170.0, 170.0)
    assert gate(measure(flat, box, keypoints(box)), QualityPolicy()) == "blurred"


@settings(max_examples=40, deadline=None)
@given(h=st.integers(32, 300), w=st.integers(32, 300), side=st.integers(1, 32))
def test_shrink_is_an_area_average(h: int, w: int, side: int) -> None:
    grey = np.random.default_rng(h * w).uniform(0, 255, (h, w)).astype(np.float32)
    out = shrink(grey, side)
    assert out.shape == (side, side)
    assert float(out.min()) >= float(grey.min()) - 1e-3
    assert float(out.max()) <= float(grey.max()) + 1e-3
    assert abs(float(shrink(np.full((h, w), 7.0, np.float32), side).mean()) - 7.0) < 1e-4


@given(
    arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))),
    st.integers(1, 4),
)
def test_grey_of_is_bit_for_bit_the_float32_channel_mean(
    rgb: npt.NDArray[np.uint8], step: int
) -> None:
    view = rgb[::step, ::step]  # measure() also takes strided views
    expected = view.astype(np.float32).mean(axis=2)
    got = grey_of(view)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), expected.view(np.uint32))
