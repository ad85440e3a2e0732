"""Score-fusion constants: each embedder's impostor cosine mean and spread on calibration faces.

All calibration faces belong to distinct identities, so every pair among them is an impostor
pair. z-normalising each model's cosine, ``(cos_i - mean_i) / std_i``, and averaging is affine in
``sum_i cos_i / std_i``; so a profile's block weights are ``w_i = (1/std_i) / sum_j (1/std_j)`` and
the means fold into the threshold. Weights never use the LFW pairs that evaluation scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from agent.vision.embedder import ModelEmbedder  # noqa: E402
from agent.vision.manifest import load_manifest  # noqa: E402


def impostor_stats(e: np.ndarray) -> dict[str, float]:
    s = e @ e.T
    iu = np.triu_indices(len(e), 1)
    return {
        "mean": round(float(s[iu].mean()), 6),
        "std": round(float(s[iu].std()), 6),
        "pairs": len(iu[0]),
    }


def recommended_threshold(
    blocks: list[dict[str, object]], embs: dict[str, np.ndarray], far: float = 1e-3
) -> float:
    """Fused score exceeded by ``far`` of the calibration impostor pairs."""
    fused = np.concatenate(
        [
            np.sqrt(float(b["weight"])) * embs[f"{b['model']}|{'flip' if b['flip'] else 'no_flip'}"]
            for b in blocks
        ],
        axis=1,
    )
    s = fused @ fused.T
    imp = np.sort(s[np.triu_indices(len(s), 1)])[::-1]
    return round(float(imp[int(far * len(imp))]), 4)


def weights(stds: list[float]) -> list[float]:
    inv = np.array([1.0 / s for s in stds])
    return [round(float(x), 4) for x in inv / inv.sum()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument(
        "--calibration",
        type=Path,
        action="append",
        required=True,
        help="aligned crops .npy; one per crop size (same faces, same order)",
    )
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    by_size = {}
    for f in a.calibration:
        c = np.load(f)
        by_size[c.shape[1:3]] = c
    man = load_manifest(a.models_dir)
    out = {}
    embs: dict[str, np.ndarray] = {}
    for name, spec in man.models.items():
        if spec.role != "embedder":
            continue
        emb = ModelEmbedder.from_manifest(man, name)
        crops = by_size[(emb.height, emb.width)]
        e = np.stack([emb.embed_crop(c) for c in crops])
        ef = np.stack([emb.embed_crop(c, flip=True) for c in crops])
        out[name] = {"no_flip": impostor_stats(e), "flip": impostor_stats(ef)}
        embs[f"{name}|no_flip"], embs[f"{name}|flip"] = e, ef
        print(name, out[name], file=sys.stderr)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    np.savez(a.out.with_suffix(".npz"), **embs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
