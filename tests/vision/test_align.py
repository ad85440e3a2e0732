"""Alignment geometry: least-squares similarity and the warp that applies it."""

from __future__ import annotations

import numpy as np
import pytest

from agent.vision.align import ARCFACE_112, ARCFACE_112_4PT, align, similarity, warp


def _rot(theta: float, s: float, t: tuple[float, float]) -> np.ndarray:
    c, n = np.cos(theta), np.sin(theta)
    return np.array([[s * c, -s * n, t[0]], [s * n, s * c, t[1]]])


def test_similarity_recovers_exact_transform() -> None:
    m = _rot(0.3, 1.7, (12.0, -4.0))
    src = np.array([[10, 20], [40, 22], [25, 45], [26, 60]], dtype=np.float64)
    dst = src @ m[:, :2].T + m[:, 2]
    assert np.allclose(similarity(src, dst), m)


def test_similarity_is_least_squares_and_never_reflects() -> None:
    src = ARCFACE_112_4PT.copy()
    mirrored = src * [-1, 1]
    m = similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    with pytest.raises(ValueError):
        similarity(src[:1], src[:1])


def test_mouth_template_is_corner_midpoint() -> None:
    assert np.allclose(ARCFACE_112_4PT[3], ARCFACE_112[3:].mean(0))


def test_warp_moves_a_marked_pixel_where_the_transform_says() -> None:
    img = np.zeros((100, 120, 3), dtype=np.uint8)
    img[30, 50] = 255
    m = _rot(0.0, 2.0, (5.0, 7.0))  # (50, 30) -> (105, 67)
    out = warp(img, m, 140, 100)
    y, x = np.unravel_index(int(out[..., 0].argmax()), out.shape[:2])
    assert (int(x), int(y)) == (105, 67)


def test_align_puts_keypoints_on_the_template() -> None:
    # A synthetic face: keypoints at a scaled, rotated, shifted copy of the template.
    m = _rot(-0.2, 2.5, (40.0, 30.0))
    kps_index = ARCFACE_112_4PT @ m[:, :2].T + m[:, 2]
    img = np.zeros((400, 400, 3), dtype=np.uint8)
    for x, y in kps_index:
        xi, yi = round(float(x)), round(float(y))
        img[yi - 2 : yi + 3, xi - 2 : xi + 3] = 255
    kps = np.vstack([kps_index + 0.5, [[0, 0], [0, 0]]]).astype(np.float32)  # continuous coords
    crop = align(img, kps, ARCFACE_112_4PT, 112, 112)
    assert crop.shape == (112, 112, 3)
    lum = crop[..., 0].astype(np.float64)
    for x, y in ARCFACE_112_4PT:
        xi, yi = round(float(x)), round(float(y))
        win = lum[yi - 3 : yi + 4, xi - 3 : xi + 4]
        assert win.max() > 100
        gy, gx = np.mgrid[yi - 3 : yi + 4, xi - 3 : xi + 4]
        cx, cy = (gx * win).sum() / win.sum(), (gy * win).sum() / win.sum()
        assert abs(cx - x) < 0.75 and abs(cy - y) < 0.75
