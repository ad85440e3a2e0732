"""Which face enrolment takes from a photo with several: refused without a choice, the
largest with --largest, the one nearest the centre with --central (real image, real models).

LFW's Alberta_Lee_0001 is cut around the subject in the middle; a bystander at the top right is
boxed larger. Taking him cost 21 images (0.2 points) of LFW through the tool before --central.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models import Vision
from tests.vision.conftest import LFW, MODELS, needs_lfw, needs_runtime

pytestmark = [needs_runtime, needs_lfw]
IMAGE = LFW / "Alberta_Lee" / "Alberta_Lee_0001.jpg"


@pytest.fixture(scope="module")
def vision() -> Vision:
    from agent.models import load_profile

    return load_profile("fast", MODELS, threads=1)


def centre_of(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_two_faces_need_a_choice(vision: Vision) -> None:
    from central.enrol import embed_image

    out = embed_image(vision, "S-1", IMAGE, None)
    assert out.embedding is None
    assert out.refusal == "2 faces (use --largest or --central)"


def test_central_takes_the_subject_and_largest_the_bystander(vision: Vision) -> None:
    from agent.vision.image import read_image
    from central.enrol import choose, embed_image

    image = read_image(IMAGE)
    faces = vision.detector.detect(image)
    assert len(faces) == 2
    boxes = [f.box for f in faces]
    central = boxes[choose(boxes, 250, 250, "central")]
    largest = boxes[choose(boxes, 250, 250, "largest")]
    cx, cy = centre_of(central)
    assert 100 < cx < 150 and 100 < cy < 175  # the subject, in the middle
    assert centre_of(largest)[0] > 175 and centre_of(largest)[1] < 90  # top right
    a = embed_image(vision, "S-1", IMAGE, "central").embedding
    b = embed_image(vision, "S-1", IMAGE, "largest").embedding
    assert a is not None and b is not None
    assert float(a @ b) < 0.5  # two different people


def test_the_cli_refuses_both_choices() -> None:
    from central.watchlist_cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["enrol", "--images", "x", "--out", "y", "--central"])
    assert args.pick == "central"
    assert parser.parse_args(["enrol", "--images", "x", "--out", "y"]).pick is None
    with pytest.raises(SystemExit):
        parser.parse_args(["enrol", "--images", "x", "--out", "y", "--central", "--largest"])


def test_blur_is_refused_on_the_aligned_face_not_for_a_dark_one(
    vision: Vision, tmp_path: Path
) -> None:
    """A dark, low-contrast but sharp photo is taken (the box Laplacian refused it); a sharp
    photo blurred with sigma 4 px (calibration faces keep only cosine 0.76 to their sharp
    embedding at that blur) is refused."""
    from PIL import Image, ImageFilter

    from central.enrol import embed_image

    dark = LFW / "Abdoulaye_Wade" / "Abdoulaye_Wade_0003.jpg"
    assert embed_image(vision, "S-1", dark, "central").refusal is None
    sharp = LFW / "Colin_Powell" / "Colin_Powell_0001.jpg"
    assert embed_image(vision, "S-2", sharp, "central").refusal is None
    blurred = tmp_path / "blurred.png"
    with Image.open(sharp) as im:
        im.convert("RGB").filter(ImageFilter.GaussianBlur(4)).save(blurred)
    out = embed_image(vision, "S-2", blurred, "central")
    assert out.embedding is None and out.refusal == "face too blurred"


def test_enrol_with_either_detector_gives_the_same_profile_and_close_embeddings(
    tmp_path: Path,
) -> None:
    # lfr-watchlist enrol --detector yunet: the faces are found (and aligned) by YuNet, the
    # entries carry the same profile id (a node of either kind accepts them), and the same
    # photo's embeddings through the two detectors agree (models/README.md: mean cosine 0.96
    # for fast over LFW); a different person stays far below.
    import shutil

    from central.watchlist_cli import main
    from protocol.entries import parse_entries_file
    from protocol.limits import DEFAULT_LIMITS

    people = {"S-1": "Colin_Powell", "S-2": "George_W_Bush"}
    for ref, name in people.items():
        (tmp_path / "in" / ref).mkdir(parents=True)
        shutil.copy(LFW / name / f"{name}_0001.jpg", tmp_path / "in" / ref)
    got = {}
    for detector in ("blazeface", "yunet"):
        out = tmp_path / f"{detector}.json"
        args = ["enrol", "--images", str(tmp_path / "in"), "--out", str(out)]
        assert main([*args, "--profile", "fast", "--detector", detector]) == 0
        got[detector] = parse_entries_file(out.read_bytes(), DEFAULT_LIMITS)
    assert got["blazeface"].embedder_sha256 == got["yunet"].embedder_sha256
    b = {e.subject_ref: e.embeddings[0] for e in got["blazeface"].entries}
    y = {e.subject_ref: e.embeddings[0] for e in got["yunet"].entries}
    assert b.keys() == y.keys() == set(people)
    for ref in people:
        assert float(b[ref] @ y[ref]) > 0.9
    assert float(b["S-1"] @ y["S-2"]) < 0.5
