"""The template protocol's data: LFW people as unit embeddings per profile, and its results.

``make eval`` feeds it the embeddings it computes anyway (:func:`from_embedded`);
``python -m tools.evaluation --template-only`` embeds only the photos this protocol uses,
through ``agent.models.load_profile`` as models/evaluation/calibrate_1n.py does, and shares that
script's cache (``models/.cache/calib_1n/<profile id>.npz``, git-ignored): a run after the
calibration embeds only what the calibration did not.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tools.evaluation.embedding import PROFILES
from tools.evaluation.metrics import name_key
from tools.evaluation.template import summary, template_searches, without

F64 = npt.NDArray[np.float64]
KS = (1, 2, 3, 5)
FPIRS = (1e-2, 1e-3)
PHOTOS = 10  # other photos per identity at most (George W Bush has 530)
PER_ID = 10  # K-subsets per identity at most
CACHE = Path(__file__).resolve().parents[2] / "models" / ".cache" / "calib_1n"
_STATE: dict[str, Any] = {}


def lfw_people(lfw: Path) -> dict[str, list[str]]:
    """Identity -> its first 1 + PHOTOS photos (relative paths, sorted)."""
    return {
        d.name: sorted(p.relative_to(lfw).as_posix() for p in d.glob("*.jpg"))[: 1 + PHOTOS]
        for d in sorted(lfw.iterdir())
        if d.is_dir()
    }


def as_rows(people: dict[str, list[str]], emb: dict[str, F64]) -> tuple[list[F64], set[int]]:
    """Per identity the unit embeddings of its photos where a face was found (an identity whose
    listed, first, photo has no face cannot be listed and is left out), and the indices of the
    name duplicates: identities LFW files under two spellings of one name (``name_key``)."""
    out, keys = [], []
    for name, photos in people.items():
        if photos[0] not in emb:
            continue
        out.append(np.stack([emb[p] for p in photos if p in emb]))
        keys.append(name_key(name))
    twice = {k for k in keys if keys.count(k) > 1}
    return out, {i for i, k in enumerate(keys) if k in twice}


def measure(
    people: dict[str, list[str]], emb: dict[str, dict[str, F64]], bootstrap: int
) -> dict[str, Any]:
    """Per profile and K: every identity that can supply K (``all``) and only those with at
    least 5 other photos (``common``: every K on the same people); ``clean``: ``all`` without
    the non-mated searches of name duplicates."""
    results: dict[str, Any] = {"ks": list(KS), "photos": PHOTOS, "per_id": PER_ID}
    for name, vectors in emb.items():
        rows, duplicates = as_rows(people, vectors)
        results["name_duplicates"] = len(duplicates)
        searched = {
            scope: [
                template_searches(rows, k, photos=PHOTOS, per_id=PER_ID, min_others=floor)
                for k in KS
            ]
            for scope, floor in (("all", 0), ("common", max(KS)))
        }
        searched["clean"] = [without(r, duplicates) for r in searched["all"]]
        results[name] = {
            scope: [summary(r, FPIRS, bootstrap) for r in by_k] for scope, by_k in searched.items()
        }
    return results


def from_embedded(
    lfw: Path, embedded: dict[str, dict[str, Any] | None], bootstrap: int
) -> dict[str, Any]:
    """The protocol on ``make eval``'s embeddings (keyed by absolute path; None: no face)."""
    people = lfw_people(lfw)
    emb: dict[str, dict[str, F64]] = {name: {} for name in PROFILES}
    for photos in people.values():
        for photo in photos:
            found = embedded.get(str(lfw / photo))
            for name in PROFILES:
                if found is not None:
                    v = np.asarray(found[name], dtype=np.float64)
                    emb[name][photo] = v / np.linalg.norm(v)
    return measure(people, emb, bootstrap)


def _init(profiles: list[str]) -> None:
    from agent.models import load_profile

    _STATE["vision"] = {p: load_profile(p, threads=1) for p in profiles}


def _embed(path: str) -> dict[str, Any]:
    from agent.vision.detector import pick_central
    from agent.vision.image import read_image

    img = read_image(Path(path))
    out: dict[str, Any] = {}
    for p, v in _STATE["vision"].items():
        face = pick_central(list(v.detector.detect(img)), img.shape[1], img.shape[0])
        out[p] = None if face is None else v.embedder.embed(img, face)
    return out


def cached(lfw: Path, workers: int, cache: Path = CACHE) -> dict[str, dict[str, F64]]:
    """{profile: {photo: unit embedding}} for the photos of :func:`lfw_people`, embedding only
    those the cache lacks (the cache file is rewritten with the union)."""
    from agent.vision.manifest import load_manifest

    raw = load_manifest().raw["profiles"]
    people = lfw_people(lfw)
    photos = sorted({p for ps in people.values() for p in ps})
    out: dict[str, dict[str, F64]] = {}
    for name in PROFILES:
        f = cache / f"{raw[name]['id']}.npz"
        got: dict[str, F64] = {}
        missing: set[str] = set()
        if f.exists():
            z = np.load(f)
            got = dict(zip(z["photos"].tolist(), z["embeddings"].astype(np.float64), strict=True))
            missing = set(z["missing"].tolist())
        todo = [p for p in photos if p not in got and p not in missing]
        if todo:
            print(f"{name}: embedding {len(todo)} photos the cache lacks", file=sys.stderr)
            with ProcessPoolExecutor(workers, initializer=_init, initargs=([name],)) as pool:
                paths = [str(lfw / p) for p in todo]
                for n, (photo, res) in enumerate(
                    zip(todo, pool.map(_embed, paths, chunksize=16), strict=True), 1
                ):
                    if res[name] is None:
                        missing.add(photo)
                    else:
                        got[photo] = res[name] / np.linalg.norm(res[name])
                    if n % 500 == 0:
                        print(f"\r{n}/{len(todo)}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            cache.mkdir(parents=True, exist_ok=True)
            names = sorted(got)
            np.savez(
                f,
                photos=np.array(names),
                embeddings=np.stack([got[x] for x in names]).astype(np.float32),
                missing=np.array(sorted(missing)),
            )
        out[name] = {p: got[p] for p in photos if p in got}
    return out
