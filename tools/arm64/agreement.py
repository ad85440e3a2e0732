"""Each profile's embeddings of the same faces on two machines (x86 here, arm64 in the
emulated root), and how closely they agree.

``embed`` runs the enrolment path (``central.enrol.embed_image``: detect, quality gate, align,
embed) over the first image of the first N LFW identities and saves the embeddings; it only
imports the installed packages, so the arm64 root runs this file with its venv's Python.
``compare`` prints the cosine per profile and per block and fails below ``--min``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

PROFILES = ("fast", "accurate")
F32 = npt.NDArray[np.float32]


def pick_faces(lfw: Path, count: int) -> list[Path]:
    """The first image of the first ``count`` identities (sorted): the same faces everywhere."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    faces = []
    for person in people:
        images = sorted(person.glob("*.jpg"))
        if images:
            faces.append(images[0])
        if len(faces) == count:
            break
    return faces


def embed(faces: list[Path], out: Path, profiles: tuple[str, ...]) -> dict[str, object]:
    """Embeds ``faces`` with each profile; writes ``out`` (npz) and returns timings."""
    from agent.models import load_profile
    from central.enrol import embed_image

    arrays: dict[str, F32] = {}
    timings: dict[str, object] = {}
    for profile in profiles:
        t0 = time.perf_counter()
        vision = load_profile(profile, threads=1)  # hash-checks every model file it loads
        load_s = time.perf_counter() - t0
        rows, refs = [], []
        t1 = time.perf_counter()
        for path in faces:
            outcome = embed_image(vision, path.parent.name, path, "largest")
            if outcome.embedding is None:
                print(f"{profile}: {path.name}: refused ({outcome.refusal})", file=sys.stderr)
                continue
            rows.append(outcome.embedding)
            refs.append(path.name)
        per_face = (time.perf_counter() - t1) / max(len(faces), 1)
        arrays[f"{profile}/emb"] = np.stack(rows).astype(np.float32)
        arrays[f"{profile}/refs"] = np.array(refs)
        timings[profile] = {
            "load_s": round(load_s, 2),
            "per_face_s": round(per_face, 3),
            "faces": len(refs),
            "model_hashes": vision.model_hashes,
        }
    with out.open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    return timings


def block_slices(profile: str) -> list[tuple[str, slice]]:
    from agent.vision.manifest import load_manifest

    manifest = load_manifest()
    out, start = [], 0
    for block in manifest.profile(profile).blocks:
        dim = manifest.model(block.model).dim
        out.append((block.model, slice(start, start + dim)))
        start += dim
    return out


def cosines(a: F32, b: F32) -> F32:
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    out: F32 = (num / den).astype(np.float32)
    return out


def compare(ref: Path, other: Path, profiles: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per profile (and per block): min and mean cosine over the faces both machines embedded."""
    with np.load(ref) as a, np.load(other) as b:
        result: dict[str, dict[str, float]] = {}
        for profile in profiles:
            refs_a = list(a[f"{profile}/refs"])
            refs_b = list(b[f"{profile}/refs"])
            common = [r for r in refs_a if r in refs_b]
            if refs_a != refs_b:
                print(f"{profile}: the machines refused different faces", file=sys.stderr)
            if not common:
                raise SystemExit(f"{profile}: no face embedded on both machines")
            ea = a[f"{profile}/emb"][[refs_a.index(r) for r in common]]
            eb = b[f"{profile}/emb"][[refs_b.index(r) for r in common]]
            c = cosines(ea, eb)
            row = {"faces": float(len(common)), "min": float(c.min()), "mean": float(c.mean())}
            for model, sl in block_slices(profile):
                row[f"min {model}"] = float(cosines(ea[:, sl], eb[:, sl]).min())
            result[profile] = row
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agreement", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--lfw", type=Path, required=True)
    e.add_argument("--faces", type=int, default=4)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--profiles", default=",".join(PROFILES))
    c = sub.add_parser("compare")
    c.add_argument("reference", type=Path, help="npz from the reference machine (x86)")
    c.add_argument("other", type=Path, help="npz from the machine under test (arm64)")
    c.add_argument("--profiles", default=",".join(PROFILES))
    c.add_argument("--min", type=float, default=0.999, help="fail below this cosine")
    args = parser.parse_args(argv)
    profiles = tuple(p for p in args.profiles.split(",") if p)
    if args.command == "embed":
        faces = pick_faces(args.lfw, args.faces)
        if not faces:
            raise SystemExit(f"{args.lfw}: no LFW identities")
        print(json.dumps(embed(faces, args.out, profiles), indent=1))
        return 0
    result = compare(args.reference, args.other, profiles)
    failed = []
    for profile, row in result.items():
        blocks = ", ".join(f"{k[4:]} {v:.6f}" for k, v in row.items() if k.startswith("min "))
        print(
            f"{profile:9s} faces {int(row['faces'])}  min cosine {row['min']:.6f}  "
            f"mean {row['mean']:.6f}  per block min: {blocks}"
        )
        if row["min"] < args.min:
            failed.append(profile)
    if failed:
        print(f"agreement below {args.min}: {', '.join(failed)}")
        return 1
    print(f"agreement >= {args.min} for every profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
