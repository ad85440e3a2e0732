"""Convert dlib's face-recognition ResNet (from face-recognition-models) to a float TFLite model.

Architecture (dlib's ``anet_type``): 7x7/2 conv, affine, relu, 3x3/2 max pool; residual blocks of
32 (x3), 64 (down + x3), 128 (down + x2), 256 (down + x2), 256 (down); global average pool; a
128-wide fully connected layer without bias. Each affine is folded into the conv before it.
A "down" block adds the block output (3x3/2 convs, no padding) to a 2x2/2 average pool of its
input; dlib adds tensors of different sizes over their overlap, i.e. it zero-pads the smaller one
at the bottom/right and in channels, and so do we. Input: 150x150 RGB 0..255, NHWC; the channel
means and the /256 scaling are inside the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dlib_reader import DlibResNet, read

# (channels, down-sampling first block?, number of blocks) per level, input to output.
LEVELS = [(32, False, 3), (64, True, 4), (128, True, 3), (256, True, 3), (256, True, 1)]


def build_module(net: DlibResNet):
    import tensorflow as tf

    folded = []
    for (w, b, stride), (g, beta) in zip(net.convs, net.affines, strict=True):
        hwio = np.transpose(w * g[:, None, None, None], (2, 3, 1, 0)).astype(np.float32)
        folded.append((tf.constant(hwio), tf.constant((b * g + beta).astype(np.float32)), stride))
    fc = tf.constant(net.fc.astype(np.float32))
    means = tf.constant(np.array(net.means, np.float32))

    def conv(x, i, relu):
        w, b, stride = folded[i]
        k = int(w.shape[0])
        if stride == 1:
            p = k // 2
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        y = tf.nn.conv2d(x, w, strides=stride, padding="VALID") + b
        return tf.nn.relu(y) if relu else y

    class DlibFaceNet(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 150, 150, 3], tf.float32, name="input")])
        def __call__(self, x):
            x = (x - means) / 256.0
            x = conv(x, 0, relu=True)
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
            i = 1
            for channels, down, blocks in LEVELS:
                for j in range(blocks):
                    y = conv(conv(x, i, relu=True), i + 1, relu=False)
                    i += 2
                    if down and j == 0:
                        skip = tf.nn.avg_pool2d(x, 2, 2, "VALID")
                        dh = int(skip.shape[1]) - int(y.shape[1])
                        dc = channels - int(skip.shape[3])
                        y = tf.pad(y, [[0, 0], [0, dh], [0, dh], [0, 0]])
                        skip = tf.pad(skip, [[0, 0], [0, 0], [0, 0], [0, dc]])
                        x = tf.nn.relu(skip + y)
                    else:
                        x = tf.nn.relu(x + y)
            x = tf.reduce_mean(x, axis=[1, 2])
            return {"embedding": tf.matmul(x, fc)}

    return DlibFaceNet()


def convert(dat: Path, out: Path) -> None:
    import tensorflow as tf

    module = build_module(read(dat.read_bytes()))
    fn = module.__call__.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    out.write_bytes(conv.convert())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dat", type=Path)
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    convert(a.dat, a.out)
    print(f"dlib ResNet -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
