"""Quantise a float embedder with ai-edge-quantizer: weight-only int8, dynamic-range int8, static int8.

Static int8 is calibrated on aligned LFW faces of identities absent from the pairs file
(``calibration.py``), fed through the model's own colour order and normalisation, plus their
mirror images (the runtime embeds mirrored crops too when flip averaging is on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from catalog import FAMILIES  # noqa: E402

MODES = {"int8w": "weight-only", "int8dr": "dynamic-range", "int8": "static"}


def calibration_inputs(family: str, crops: np.ndarray) -> list[np.ndarray]:
    inp = FAMILIES[family]["input"]
    views = np.concatenate([crops, crops[:, :, ::-1]])
    if inp["color"] == "BGR":
        views = views[..., ::-1]
    x = views.astype(np.float32) * inp["normalisation"]["scale"] + inp["normalisation"]["offset"]
    return [x[i : i + 1].astype(np.float32) for i in range(len(x))]


def static_recipe(float_scope: str | None) -> object:
    """Static int8 everywhere, except ops whose name matches ``float_scope`` (kept float)."""
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    rm = recipe_manager.RecipeManager()
    rm.add_static_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        activation_num_bits=8,
        weight_num_bits=8,
    )
    if float_scope:
        rm.add_quantization_config(
            regex=float_scope,
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            algorithm_key=AlgorithmName.NO_QUANTIZE,
        )
    return rm.get_quantization_recipe()


def quantize(
    src: Path,
    dst: Path,
    mode: str,
    family: str,
    crops: np.ndarray | None,
    float_scope: str | None = None,
) -> None:
    from ai_edge_quantizer import quantizer, recipe

    qt = quantizer.Quantizer(str(src))
    if mode == "int8w":
        qt.load_quantization_recipe(recipe.weight_only_wi8_afp32())
        result = qt.quantize()
    elif mode == "int8dr":
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        result = qt.quantize()
    else:
        if crops is None:
            raise SystemExit("static int8 needs --calibration")
        qt.load_quantization_recipe(static_recipe(float_scope))
        from ai_edge_litert.interpreter import Interpreter

        sig = Interpreter(model_path=str(src)).get_signature_list()
        key = next(iter(sig))
        name = sig[key]["inputs"][0]
        data = {key: [{name: x} for x in calibration_inputs(family, crops)]}
        result = qt.quantize(qt.calibrate(data, num_threads=2))
    if dst.exists():
        dst.unlink()
    result.export_model(str(dst))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--mode", choices=sorted(MODES), required=True)
    ap.add_argument(
        "--family",
        choices=[k for k, v in FAMILIES.items() if v["role"] == "embedder"],
        required=True,
    )
    ap.add_argument("--calibration", type=Path, help="(N,112,112,3) uint8 .npy of aligned crops")
    ap.add_argument("--float-scope", help="regex of op names kept float in static int8")
    a = ap.parse_args()
    crops = np.load(a.calibration) if a.calibration else None
    quantize(a.src, a.dst, a.mode, a.family, crops, a.float_scope)
    print(f"{MODES[a.mode]} int8: {a.src.name} -> {a.dst}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
