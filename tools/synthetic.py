"""Clips and watchlists for the synthetic vision backend (coloured, textured squares): what the
tests and the load generator run a fleet on instead of cameras and real faces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agent.synthetic_vision import DIM, PROFILE_ID, colour_embedding, draw_face
from lfrkit.toml_text import toml_value
from protocol.entries import Entries, Entry
from protocol.watchlist import POLICY, MatchThreshold, seal_bundle
from provisioning.authority import load_ops_signer
from provisioning.registry import Registry


@dataclass(frozen=True)
class Appearance:
    colour: int
    first: int  # frame indices, inclusive
    last: int
    row: int = 0  # vertical lane, so people do not overlap


def make_clip(
    path: Path,
    frames: int,
    people: list[Appearance],
    *,
    size: int = 56,
    width: int = 320,
    height: int = 240,
    ms: int = 40,
) -> Path:
    rng = np.random.default_rng(5)
    images = []
    for index in range(frames):
        frame = (rng.integers(0, 40, (height, width, 3))).astype(np.uint8)
        for person in people:
            if person.first <= index <= person.last:
                x = 10 + 4 * (index - person.first)
                draw_face(
                    frame,
                    person.colour,
                    min(x, width - size - 1),
                    10 + person.row * (size + 10),
                    size,
                )
        images.append(Image.fromarray(frame))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=ms, loop=0, optimize=False
    )
    return path


def synthetic_entries(colours: list[int]) -> Entries:
    return Entries(
        PROFILE_ID,
        DIM,
        tuple(Entry(f"WL-{c:04d}", "wanted", None, colour_embedding(c)[None, :]) for c in colours),
    )


def seal_for(
    index: dict[str, Any],
    device: str,
    colours: list[int],
    version: int,
    lifetime: timedelta = timedelta(hours=1),
) -> bytes:
    record = Registry.load(Path(index["registry"])).get(device)
    now = datetime.now(UTC).replace(microsecond=0)
    return seal_bundle(
        synthetic_entries(colours),
        device_id=device,
        site=record.site,
        deployment_id="test-deployment",
        version=version,
        issued_at=now,
        expires_at=now + lifetime,
        recipient=record.hpke_key("X25519-HKDF-SHA256-ChaCha20Poly1305"),
        signers=[load_ops_signer(Path(k)) for k in index["ops_keys"]],
        # The synthetic backend's own 1:1 threshold (agent.models.load_synthetic).
        threshold=MatchThreshold(0.9, POLICY),
    )


def use_synthetic(config: Path, **camera: Any) -> None:
    """Switch a device's agent.toml to the synthetic backend (idempotent)."""
    text = config.read_text()
    if "[vision]" not in text:
        text += '\n[vision]\nbackend = "synthetic"\n'
    if camera and "[camera]" not in text:
        text += "\n[camera]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in camera.items())
    config.write_text(text)
