"""Would native int8 PReLUs make the shipped SFace faster? Build the variant, time both.

    python models/evaluation/sface_int8_prelu.py [--model models/sface_int8.tflite] [--runs 7]

The quantiser leaves SFace's 27 PReLUs in float between DEQUANTIZE and QUANTIZE ops. This
rewrites each DEQUANTIZE -> PRELU -> QUANTIZE chain as one int8 PRELU (input: the dequantize's
int8 input; slopes: per-tensor symmetric int8; output: the quantize's int8 output) into
``models/.cache/sface_int8_prelu.tflite`` and times both files at one thread, interleaved, on the
same random int8 input (timing only: the variant is not a candidate unless it is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def int8_prelu(src: bytes) -> tuple[bytes, int]:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src, 0))
    for b in model.buffers:  # inline the buffers stored after the flatbuffer (offset, size)
        if b.offset and b.size:
            b.data = np.frombuffer(src[b.offset : b.offset + b.size], dtype=np.uint8)
            b.offset = b.size = 0
    ops = schema.BuiltinOperator
    sg = model.subgraphs[0]

    def code(op: object) -> int:
        return int(model.operatorCodes[op.opcodeIndex].builtinCode)  # type: ignore[attr-defined]

    kept, i, rewritten = [], 0, 0
    while i < len(sg.operators):
        op = sg.operators[i]
        chain = sg.operators[i : i + 3]
        if [code(o) for o in chain] == [ops.DEQUANTIZE, ops.PRELU, ops.QUANTIZE]:
            prelu, quant = chain[1], chain[2]
            slopes_t = sg.tensors[int(prelu.inputs[1])]
            slopes = np.frombuffer(bytes(model.buffers[slopes_t.buffer].data), dtype=np.float32)
            scale = float(np.abs(slopes).max()) / 127.0
            buf = schema.BufferT()
            q = np.clip(np.round(slopes / scale), -127, 127).astype(np.int8)
            buf.data = np.frombuffer(q.tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            t = schema.TensorT()
            t.shape = np.array(slopes_t.shape, dtype=np.int32)
            t.type = schema.TensorType.INT8
            t.buffer = len(model.buffers) - 1
            t.name = slopes_t.name + b"_int8"
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [0]
            sg.tensors.append(t)
            prelu.inputs = np.array([int(op.inputs[0]), len(sg.tensors) - 1], dtype=np.int32)
            prelu.outputs = np.array([int(quant.outputs[0])], dtype=np.int32)
            kept.append(prelu)
            rewritten += 1
            i += 3
            continue
        kept.append(op)
        i += 1
    sg.operators = kept
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), rewritten


def time_models(paths: list[Path], runs: int) -> dict[str, float]:
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    loaded = []
    for p in paths:
        it = Interpreter(model_path=str(p), num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        x = rng.integers(-128, 127, size=tuple(d["shape"])).astype(d["dtype"])
        loaded.append((p.name, it, d["index"], x))
    samples: dict[str, list[float]] = {name: [] for name, *_ in loaded}
    for _ in range(runs):
        for name, it, index, x in loaded:
            t0 = time.perf_counter()
            for _ in range(50):
                it.set_tensor(index, x)
                it.invoke()
            samples[name].append((time.perf_counter() - t0) * 1000 / 50)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "sface_int8.tflite")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    variant, n = int8_prelu(args.model.read_bytes())
    out = ROOT / "models" / ".cache" / "sface_int8_prelu.tflite"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(variant)
    print(f"rewrote {n} DEQUANTIZE -> PRELU -> QUANTIZE chains as int8 PRELU -> {out}")
    for name, ms in time_models([args.model, out], args.runs).items():
        print(f"  {name}: {ms:.2f} ms per invoke (one thread, median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
