"""--largest picks the face most inside the picture, not a box the detector ran off the edge."""

from __future__ import annotations

from central.enrol import ENROL_QUALITY, MIN_FACE_DETAIL, visible_area


def test_a_box_past_the_border_counts_only_its_visible_part() -> None:
    subject = (80.0, 60.0, 170.0, 170.0)  # 90 x 110, all inside a 250 x 250 image
    bystander = (-60.0, 100.0, 60.0, 260.0)  # 120 x 160 as boxed, mostly outside
    assert (bystander[2] - bystander[0]) * (bystander[3] - bystander[1]) > 90 * 110
    assert visible_area(subject, 250, 250) == 90 * 110
    assert visible_area(bystander, 250, 250) == 60 * 150
    assert max((subject, bystander), key=lambda b: visible_area(b, 250, 250)) == subject


def test_a_box_wholly_outside_has_no_area() -> None:
    assert visible_area((300.0, 10.0, 350.0, 60.0), 250, 250) == 0.0


def test_enrolment_does_not_refuse_pose() -> None:
    assert ENROL_QUALITY.max_yaw == float("inf")
    assert ENROL_QUALITY.min_face_px > 0 and MIN_FACE_DETAIL > 0
