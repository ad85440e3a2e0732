"""Every image through the device's own pipeline (detect -> align -> embed), in worker
processes: each model once per face (per flip setting the profiles use), the profiles
composed from their blocks."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PROFILES = ("accurate", "fast")
FLOAT_MODEL = "mobilefacenet_float32.tflite"
F32 = npt.NDArray[np.float32]
_STATE: dict[str, Any] = {}


def _init() -> None:
    from agent.models import load_profile
    from agent.vision.embedder import ModelEmbedder
    from agent.vision.manifest import load_manifest

    manifest = load_manifest()
    vision = load_profile("accurate", threads=1)
    _STATE["detector"] = vision.detector
    # Each model runs once per face; the profiles are composed from the blocks exactly as
    # ProfileEmbedder does (sqrt(weight) * unit block, concatenated).
    _STATE["profiles"] = {p: manifest.profile(p) for p in PROFILES}
    # (model, flip averaging) as each profile's blocks ask; the float reference as `fast` does.
    views = {(b.model, b.flip) for p in PROFILES for b in manifest.profile(p).blocks}
    views.add((FLOAT_MODEL, manifest.profile("fast").blocks[0].flip))
    _STATE["views"] = views
    _STATE["models"] = {m: ModelEmbedder.from_manifest(manifest, m, 1) for m, _ in views}


def _embed(path: str) -> tuple[str, dict[str, F32] | None]:
    from agent.vision.detector import pick_central
    from agent.vision.image import read_image

    image = read_image(Path(path))
    # LFW images are centred on the face: take the detection nearest the centre.
    face = pick_central(_STATE["detector"].detect(image), image.shape[1], image.shape[0])
    if face is None:
        return path, None
    crops = {name: model.crop(image, face) for name, model in _STATE["models"].items()}
    blocks = {
        (name, flip): _STATE["models"][name].embed_crop(crops[name], flip=flip)
        for name, flip in _STATE["views"]
    }
    out = {
        p: np.concatenate(
            [np.sqrt(b.weight) * blocks[b.model, b.flip] for b in _STATE["profiles"][p].blocks]
        ).astype(np.float32)
        for p in PROFILES
    }
    out["mobilefacenet_float32"] = next(v for (m, _), v in blocks.items() if m == FLOAT_MODEL)
    return path, out


def embed_images(images: list[str], workers: int) -> dict[str, dict[str, F32] | None]:
    """Each image's embeddings per profile and of the float model (None: no face found)."""
    embedded: dict[str, dict[str, F32] | None] = {}
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        for n, (path, found) in enumerate(pool.map(_embed, images, chunksize=16), 1):
            embedded[path] = found
            if n % 500 == 0:
                print(f"\rembedded {n}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return embedded


def unit_rows(vectors: list[F32 | None], dim: int) -> npt.NDArray[np.float64]:
    """The vectors as unit rows; zeros where there is none (no face found)."""
    out = np.zeros((len(vectors), dim))
    for i, v in enumerate(vectors):
        if v is not None:
            out[i] = v / np.linalg.norm(v)
    return out
