"""Per-stage latency on one 720p frame: decode, detect, align, embed, match, seal and sign."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from agent.core.matcher import Matcher
from agent.models import Vision
from protocol import hpke
from protocol.entries import Entry
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from tools.bench.scenes import U8
from tools.bench.timing import Timing, timed


def stage_latencies(vision: Vision, runs: int, frame: U8) -> list[Timing]:
    from agent.vision.align import align
    from agent.vision.image import decode_image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=90)
    jpeg = out.getvalue()
    detections = vision.detector.detect(frame)
    if not detections:
        raise SystemExit("bench: no face found in the stage-latency frame")
    det = detections[0]
    template = np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ]
    )
    rng = np.random.default_rng(0)
    dim = vision.embedder.dim
    entries = [
        Entry(f"S{i}", "wanted", None, rng.normal(size=(1, dim)).astype(np.float32))
        for i in range(10_000)
    ]
    matcher = Matcher(entries, 0.5)
    probe = vision.embedder.embed(frame, det)
    key = hpke.generate_key(hpke.DEFAULT_SUITE)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    signing = ed25519.Ed25519PrivateKey.generate()
    crop = frame[int(det.box[1]) : int(det.box[3]), int(det.box[0]) : int(det.box[2])]

    def seal_and_sign() -> None:
        out = io.BytesIO()
        Image.fromarray(crop).save(out, "JPEG", quality=85)
        event_id = new_event_id()
        sealed = seal_probe(out.getvalue(), key.public_key(), event_id=event_id, device_id="cam-01")
        sign_event(
            MatchEvent(
                event_id,
                "cam-01",
                "kx",
                "d",
                1,
                "WL-1",
                "wanted",
                0.7,
                0.5,
                0.2,
                datetime.now(UTC),
                1,
                "0" * 64,
                hpke.DEFAULT_SUITE,
                sealed,
            ),
            signing,
        )

    return [
        timed("decode 720p JPEG", runs, lambda: decode_image(jpeg)),
        timed("detect (720p, 1 pass)", runs, lambda: vision.detector.detect(frame)),
        timed(
            "detect (720p, tiles=3)",
            max(runs // 4, 20),
            lambda: vision.detector.detect(frame, tiles=3),
        ),
        timed("align (112x112)", runs, lambda: align(frame, det.keypoints, template, 112, 112)),
        timed("embed (profile)", runs, lambda: vision.embedder.embed(frame, det)),
        timed("match (10k entries)", runs, lambda: matcher.match(probe)),
        timed("JPEG + seal probe + sign event", runs, seal_and_sign),
    ]
