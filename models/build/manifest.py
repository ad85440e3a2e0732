"""Write MANIFEST.json for a folder of built models (hashes, contracts, provenance, profiles)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
from catalog import FAMILIES, SOURCES  # noqa: E402
from plan import CANDIDATES, PROFILES, SHIPPED  # noqa: E402

from agent.vision.manifest import profile_id  # noqa: E402

TOOLS = [
    "ai-edge-litert",
    "ai-edge-quantizer",
    "tensorflow",
    "onnx2tf",
    "onnx",
    "onnxruntime",
    "numpy",
]


def tool_versions() -> dict[str, str]:
    out = {}
    for t in TOOLS:
        try:
            out[t] = metadata.version(t)
        except metadata.PackageNotFoundError:
            out[t] = "absent"
    return out


def tensor_contract(path: Path) -> dict[str, Any]:
    """The input/output tensors as the runtime sees them (dtype, shape, quantisation)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))

    def one(d: dict[str, Any]) -> dict[str, Any]:
        scale, zero = d["quantization"]
        out: dict[str, Any] = {
            "name": d["name"],
            "shape": [int(x) for x in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
        }
        signature = [int(x) for x in d.get("shape_signature", d["shape"])]
        if signature != out["shape"]:
            out["shape_signature"] = signature  # -1: resized at run time (YuNet's height, width)
        if scale:
            out["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return out

    return {
        "inputs": [one(d) for d in it.get_input_details()],
        "outputs": [one(d) for d in it.get_output_details()],
    }


CALIBRATION = {
    "int8_static": "300 aligned 112x112 faces (and their mirror images) of LFW identities with a "
    "single image that the 10-fold pairs file never names; list in .cache/calib/arcface112.txt "
    "(build/calibration.py)",
    "int8_dynamic_range": "none: weights int8 per channel, activations quantised at run time",
    "int8_weight_only": "none: weights int8 per channel, dequantised to float at load",
    "float32": "none",
}


def resolve_weights(blocks: list[dict[str, Any]], fusion: dict[str, Any]) -> list[dict[str, Any]]:
    """Fill ``weight: None`` blocks from the calibration impostor spreads (fusion.py)."""
    if all(b["weight"] is not None for b in blocks):
        return blocks
    from fusion import weights

    stds = [fusion[b["model"]]["flip" if b["flip"] else "no_flip"]["std"] for b in blocks]
    return [{**b, "weight": w} for b, w in zip(blocks, weights(stds), strict=True)]


def build_manifest(
    folder: Path,
    files: list[str],
    notes: dict[str, Any],
    results: dict[str, Any],
    fusion: dict[str, Any] | None = None,
    fusion_emb: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for f in files:
        c = CANDIDATES[f]
        fam = FAMILIES[c["family"]]
        src = SOURCES[fam["source"]]
        entry: dict[str, Any] = {
            "file": f,
            "sha256": hashlib.sha256((folder / f).read_bytes()).hexdigest(),
            "bytes": (folder / f).stat().st_size,
            "role": fam["role"],
            "family": c["family"],
            "variant": c["variant"],
            "input": fam["input"],
            "output": fam["output"],
            "dim": fam["dim"],
            "source": {
                "package": f"{src['registry']}:{src['package']}@{src['version']}",
                "integrity": src["integrity"],
                "member": fam["member"],
                "member_sha256": src["members"][fam["member"]],
            },
            "origin": fam.get("origin", src["origin"]),
            "licence": fam.get("licence", src["licence"]),
        }
        entry["tensors"] = tensor_contract(folder / f)
        entry["calibration"] = CALIBRATION[c["variant"]]
        for k in ("alignment", "decode"):
            if k in fam:
                entry[k] = fam[k]
        entry.update(notes.get(f, {}))
        if f in results.get("models", {}):
            entry["lfw"] = results["models"][f]
        models[f] = entry
    profiles: dict[str, Any] = {}
    for name, p in PROFILES.items():
        if not all(b["model"] in models for b in p["blocks"]):
            continue
        if any(b["weight"] is None for b in p["blocks"]) and not fusion:
            continue
        blocks = resolve_weights(p["blocks"], fusion or {})
        extra: dict[str, Any] = {}
        if fusion_emb is not None:
            from fusion import recommended_threshold

            extra["recommended_threshold"] = recommended_threshold(blocks, fusion_emb)
            extra["recommended_threshold_note"] = (
                "fused score exceeded by 0.1 % of impostor pairs among the calibration faces "
                "(not the evaluation pairs); the operating threshold is a policy decision"
            )
        pid = profile_id(blocks, models)
        # eval_lfw.py's LFW figures and timing describe the profile it measured: attach them only
        # while that is still this profile (its id), never to a changed profile of the same name.
        measured = results.get("profiles", {}).get(name, {}).get("id") == pid
        profiles[name] = {
            "id": pid,
            "detector": p["detector"],
            "blocks": blocks,
            "dim": sum(models[b["model"]]["dim"] for b in p["blocks"]),
            **({"lfw": results["profiles"][name]} if measured else {}),
            **(
                {"per_face_ms_here": results["timing"][name]}
                if measured and name in results.get("timing", {})
                else {}
            ),
            **extra,
            **notes.get(f"profile:{name}", {}),
        }
    return {
        "schema_version": 1,
        "note": "Generated by models/build/manifest.py; do not edit by hand (make models).",
        "tools": tool_versions(),
        "models": models,
        "profiles": profiles,
    }


def measurements(cand: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """Every candidate (shipped or not): LFW 10-fold, TAR@FAR=1e-3, cosine to float, speed."""
    models = {}
    for f, r in cand.get("models", {}).items():
        models[f] = {
            "lfw_no_flip": f"{r['no_flip']['acc_mean']:.2f} +- {r['no_flip']['acc_std']:.2f} %, "
            f"TAR {r['no_flip']['tar_at_far_1e-3']:.2f} %",
            "lfw_flip": f"{r['flip']['acc_mean']:.2f} +- {r['flip']['acc_std']:.2f} %, "
            f"TAR {r['flip']['tar_at_far_1e-3']:.2f} %",
            **{k: r[k] for k in ("cosine_vs_float_mean", "cosine_vs_float_min") if k in r},
            **bench.get("models", {}).get(f, {}),
        }
    fused = {
        k: f"{v['acc_mean']:.2f} +- {v['acc_std']:.2f} %, TAR {v['tar_at_far_1e-3']:.2f} %"
        for k, v in sorted(
            cand.get("fusion_candidates", {}).items(), key=lambda kv: -kv[1]["acc_mean"]
        )
    }
    return {
        "note": "LFW View 2 through detect -> align -> embed on this 2-core x86 machine "
        "(ai-edge-litert, 2 threads); fused = z-norm weights from calibration faces",
        "candidates": models,
        "fused_pairs": fused,
    }


def add_entries(folder: Path, files: list[str], src: Path | None, notes_file: Path | None) -> int:
    """Insert or refresh the entries of ``files`` in an existing MANIFEST.json, built by the same
    code as a full run (so a full ``make install`` writes the same entries), without the LFW
    calibration, quantisation and fusion that a full run redoes."""
    for f in files:
        if f not in CANDIDATES:
            raise SystemExit(f"{f}: not a build candidate (build/plan.py)")
        if src is not None:
            data = (src / f).read_bytes()
            (folder / f).write_bytes(data)
            print(f"{f}: {hashlib.sha256(data).hexdigest()}", file=sys.stderr)
    notes = json.loads(notes_file.read_text()) if notes_file and notes_file.exists() else {}
    path = folder / "MANIFEST.json"
    man = json.loads(path.read_text())
    fresh = build_manifest(folder, files, notes, {})["models"]
    # Keep SHIPPED's order, so the result is what a full run would write.
    entries = {**man["models"], **fresh}
    order = [f for f in SHIPPED if f in entries] + [f for f in entries if f not in SHIPPED]
    man["models"] = {f: entries[f] for f in order}
    path.write_text(json.dumps(man, indent=2, sort_keys=False) + "\n")
    print(f"wrote {path} ({', '.join(files)})", file=sys.stderr)
    return 0


def calibration_entry(calib: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    """What MANIFEST.json carries of profile ``name``'s 1:N calibration (calibrate_1n.py's
    output; the tails and the held-out check stay in ``source``)."""
    p = calib["profiles"][name]
    return {
        "profile_id": p["id"],
        "source": source,
        "model": calib["model"],
        "thresholds": {k: v["thresholds"] for k, v in p["k"].items()},
        # Per K: [{"from": lowest coherence, "thresholds": {N: {fpir: t}}}] (calibrate_coherence)
        "by_coherence": {
            k: [
                {"from": b["from"], "thresholds": b["thresholds"]}
                for b in v["by_coherence"]["bins"]
            ]
            for k, v in p["k"].items()
            if "by_coherence" in v
        },
    }


def keep_calibration(man: dict[str, Any], calib: dict[str, Any], source: str) -> None:
    """Each profile's 1:N thresholds, only while they were made with the profile as it is now
    (a changed model, weight or flip changes the id: run `make calibrate` again)."""
    for name, profile in man["profiles"].items():
        c = calib.get("profiles", {}).get(name)
        if c is None or c["id"] != profile["id"]:
            print(
                f"profile {name}: no 1:N calibration for id {profile['id'][:12]}… (make calibrate)",
                file=sys.stderr,
            )
            continue
        profile["calibration_1n"] = calibration_entry(calib, name, source)


def keep_calibration_file(man: dict[str, Any], path: Path | None) -> None:
    if path is not None and path.exists():
        keep_calibration(man, json.loads(path.read_text()), path.name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--all", action="store_true", help="every candidate present, not only shipped")
    ap.add_argument("--notes", type=Path, help="JSON: per file extra fields (calibration, why)")
    ap.add_argument("--results", type=Path, help="JSON written by eval_lfw.py")
    ap.add_argument("--fusion", type=Path, help="JSON written by fusion.py")
    ap.add_argument("--verify", type=Path, help="JSON written by verify_float.py")
    ap.add_argument("--candidates", type=Path, help="eval_lfw.py results on every candidate")
    ap.add_argument("--bench", type=Path, help="JSON written by evaluation/bench_models.py")
    ap.add_argument(
        "--calibration-1n",
        type=Path,
        help="JSON written by evaluation/calibrate_1n.py: kept per profile while its id matches",
    )
    ap.add_argument(
        "--add",
        nargs="+",
        metavar="FILE",
        help="only (re)write these models' entries in --dir's existing MANIFEST.json, copying "
        "them from --install-from; every other entry and the profiles stay as they are",
    )
    ap.add_argument(
        "--install-from",
        type=Path,
        help="copy the shipped files from this build folder into --dir first",
    )
    a = ap.parse_args()
    if a.add:
        return add_entries(a.dir, a.add, a.install_from, a.notes)
    if a.install_from:
        for f in SHIPPED:
            data = (a.install_from / f).read_bytes()
            old = (a.dir / f).read_bytes() if (a.dir / f).exists() else None
            if old != data:
                (a.dir / f).write_bytes(data)
            state = "unchanged" if old == data else ("new" if old is None else "CHANGED")
            print(f"{f}: {hashlib.sha256(data).hexdigest()} {state}", file=sys.stderr)
    files = [f for f in CANDIDATES if (a.dir / f).exists()] if a.all else SHIPPED
    notes = json.loads(a.notes.read_text()) if a.notes and a.notes.exists() else {}
    if a.verify and a.verify.exists():
        for f, v in json.loads(a.verify.read_text()).items():
            notes.setdefault(f, {})["matches_source"] = v
    results = json.loads(a.results.read_text()) if a.results and a.results.exists() else {}
    fusion = json.loads(a.fusion.read_text()) if a.fusion and a.fusion.exists() else None
    emb_file = a.fusion.with_suffix(".npz") if a.fusion else None
    fusion_emb = dict(np.load(emb_file)) if emb_file and emb_file.exists() else None
    man = build_manifest(a.dir, files, notes, results, fusion, fusion_emb)
    cand = json.loads(a.candidates.read_text()) if a.candidates and a.candidates.exists() else {}
    bench = json.loads(a.bench.read_text()) if a.bench and a.bench.exists() else {}
    if cand or bench:
        man["measurements"] = measurements(cand, bench)
        if "peer" in results:
            man["measurements"]["peer_same_run"] = results["peer"]
        for f, e in man["models"].items():
            for k in ("cosine_vs_float_mean", "cosine_vs_float_min"):
                if k in cand.get("models", {}).get(f, {}):
                    e.setdefault("lfw", {})[k] = cand["models"][f][k]
            if f in bench.get("models", {}):
                e["speed_here"] = bench["models"][f]
    keep_calibration_file(man, a.calibration_1n)
    (a.dir / "MANIFEST.json").write_text(json.dumps(man, indent=2, sort_keys=False) + "\n")
    print(f"wrote {a.dir / 'MANIFEST.json'} ({len(man['models'])} models)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
