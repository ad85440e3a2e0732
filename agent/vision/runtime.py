"""TFLite interpreter wrapper: picks a runtime once, verifies each file's sha256, runs tensors.

Runtimes, in order of preference: ``ai-edge-litert`` (Google's current wheel, x86_64 and aarch64,
numpy 2), ``tflite-runtime`` (older wheel; fails under numpy 2 and its int8 kernels are slower),
then ``tensorflow.lite``. They are imported inside :func:`select_runtime`, never at module import,
so ``import agent.vision`` works on a machine without any of them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.vision.errors import ModelIntegrityError, RuntimeUnavailableError
from agent.vision.manifest import Manifest

log = logging.getLogger(__name__)

InterpreterFactory = Callable[..., Any]


@cache
def select_runtime() -> tuple[str, InterpreterFactory]:
    """Return ``(name, Interpreter class)`` of the first importable TFLite runtime."""
    try:
        from ai_edge_litert.interpreter import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            Interpreter as LiteRt,
        )
    except ImportError:
        pass
    else:
        log.info("TFLite runtime: ai-edge-litert")
        return "ai-edge-litert", LiteRt
    try:
        from tflite_runtime.interpreter import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            Interpreter as TfliteRt,
        )
    except ImportError:
        pass
    else:
        log.info("TFLite runtime: tflite-runtime")
        return "tflite-runtime", TfliteRt
    try:
        import tensorflow as tf  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise RuntimeUnavailableError(
            "no TFLite runtime: install ai-edge-litert (or tflite-runtime, or tensorflow)"
        ) from None
    log.info("TFLite runtime: tensorflow.lite")
    return "tensorflow", tf.lite.Interpreter


def read_verified(path: Path, sha256: str) -> bytes:
    """Read ``path`` and return its bytes only if their sha256 is ``sha256``."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise ModelIntegrityError(
            f"{path}: sha256 {actual} does not match the manifest's {sha256}; refusing to load"
        )
    return data


class TFLiteModel:
    """One loaded model. Inputs and outputs are float32; int8 tensors are (de)quantised here."""

    def __init__(self, data: bytes, name: str, num_threads: int = 2) -> None:
        self.name = name
        self.runtime, factory = select_runtime()
        self._data = data  # the interpreter may keep a pointer into these bytes
        self._it = factory(model_content=data, num_threads=num_threads)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._outs = self._it.get_output_details()
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in self._in["shape"])
        # -1 where the model takes any size (YuNet's height and width): see resize_input().
        self.input_signature: tuple[int, ...] = tuple(
            int(d) for d in self._in.get("shape_signature", self._in["shape"])
        )
        self.output_names: tuple[str, ...] = self._output_names()

    def _output_names(self) -> tuple[str, ...]:
        """Each output's name in the model's signature where it has one (onnx2tf names the
        tensors ``PartitionedCall:N`` and keeps the ONNX names only there), else the tensor's."""
        names = {int(o["index"]): str(o["name"]) for o in self._outs}
        if self._it.get_signature_list():
            runner = self._it.get_signature_runner()
            for key, d in runner.get_output_details().items():
                names[int(d["index"])] = str(key)
        return tuple(names[int(o["index"])] for o in self._outs)

    def resize_input(self, shape: tuple[int, ...]) -> None:
        """Give a model with dynamic input dimensions a concrete input shape (once per size: the
        runtime re-plans its buffers, so callers keep one shape per frame size)."""
        if shape == self.input_shape:
            return
        sig = self.input_signature
        if len(shape) != len(sig) or any(s not in (-1, w) for s, w in zip(sig, shape, strict=True)):
            raise ValueError(f"{self.name}: input {sig} cannot take {shape}")
        self._it.resize_tensor_input(self._in["index"], list(shape))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._outs = self._it.get_output_details()
        self.input_shape = tuple(int(d) for d in self._in["shape"])

    @classmethod
    def from_manifest(cls, manifest: Manifest, name: str, num_threads: int = 2) -> TFLiteModel:
        spec = manifest.model(name)
        data = read_verified(manifest.path(name), spec.sha256)
        log.info("loaded %s (%s, sha256 %s…)", name, spec.variant, spec.sha256[:12])
        return cls(data, name, num_threads=num_threads)

    def prepare(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        """``x`` as the model's input tensor holds it: quantised for an integer input."""
        d = self._in
        if d["dtype"] == np.float32:
            return np.asarray(x, dtype=np.float32)
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        out: npt.NDArray[Any] = np.clip(np.round(x / scale + zero), info.min, info.max)
        return out.astype(d["dtype"])

    def run(self, x: npt.NDArray[Any]) -> list[npt.NDArray[np.float32]]:
        """Run one batch, float32 or already :meth:`prepare`-d; returns the outputs in the
        model's output order, as float32."""
        d = self._in
        if x.dtype != d["dtype"]:
            x = self.prepare(x)
        self._it.set_tensor(d["index"], x)
        self._it.invoke()
        outs: list[npt.NDArray[np.float32]] = []
        for o in self._outs:
            y = self._it.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                scale, zero = o["quantization"]
                y = (y.astype(np.float32) - zero) * scale
            outs.append(np.asarray(y, dtype=np.float32))
        return outs
