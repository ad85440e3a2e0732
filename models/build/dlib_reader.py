"""Read the weights of dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``).

dlib serialises integers as a length/sign byte plus little-endian bytes, floats as an integer
mantissa and exponent, strings as a length and bytes, and tensors (version 2) as four dimensions
followed by raw little-endian float32 data. Layers are written input first, each starting with its
type name (``con_4``, ``affine_``, ``fc_2``, ...). We read only what the forward pass needs, in
order: the input layer's channel means, every convolution (filters + biases), every affine
(gamma, beta) and the final fully connected layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        size, neg = head & 0x0F, head & 0x80
        raw = self.data[self.pos + 1 : self.pos + 1 + size]
        self.pos += 1 + size
        v = int.from_bytes(raw, "little")
        return -v if neg else v

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise ValueError(f"tensor version {version} at {self.pos}")
        dims = [self.int() for _ in range(4)]
        n = int(np.prod(dims))
        arr = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).astype(np.float32)
        self.pos += 4 * n
        return arr.reshape(dims)


@dataclass
class DlibResNet:
    means: tuple[float, float, float]
    convs: list[tuple[np.ndarray, np.ndarray, int]] = field(default_factory=list)  # w, b, stride
    affines: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    fc: np.ndarray | None = None  # (inputs, outputs)


def _find(data: bytes, name: str, start: int) -> int:
    pat = bytes([1, len(name)]) + name.encode()
    i = data.find(pat, start)
    if i < 0:
        raise ValueError(f"no {name} after byte {start}")
    return i


def read(data: bytes) -> DlibResNet:
    r = Reader(data, _find(data, "input_rgb_image_sized", 0))
    r.string()
    net = DlibResNet(means=(r.float(), r.float(), r.float()))
    pos = r.pos
    while True:
        nxt = {
            n: data.find(bytes([1, len(n)]) + n.encode(), pos) for n in ("con_4", "affine_", "fc_2")
        }
        nxt = {n: i for n, i in nxt.items() if i >= 0}
        if not nxt:
            break
        name, at = min(nxt.items(), key=lambda kv: kv[1])
        r = Reader(data, at)
        r.string()
        if name == "fc_2":  # num_outputs, num_inputs, then the (inputs x outputs) params
            n_out, n_in = r.int(), r.int()
            net.fc = r.tensor().reshape(-1)[: n_in * n_out].reshape(n_in, n_out)
            pos = r.pos
            continue
        params = r.tensor().reshape(-1)
        if name == "con_4":
            nf, nr, nc, sy, _sx = (r.int() for _ in range(5))  # dlib strides are square
            k = (len(params) - nf) // (nf * nr * nc)
            w = params[: nf * k * nr * nc].reshape(nf, k, nr, nc)
            net.convs.append((w, params[nf * k * nr * nc :], sy))
        else:
            half = len(params) // 2
            net.affines.append((params[:half], params[half:]))
        pos = r.pos
    return net
