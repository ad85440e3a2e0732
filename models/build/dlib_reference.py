"""Reference descriptors from dlib itself (run with a Python that has dlib and face_recognition_models,
e.g. the peer venv): one 128-d descriptor per 150x150 calibration chip.

    python dlib_reference.py DAT CHIPS.npy OUT.npy
"""

import sys

import dlib
import numpy as np


def main() -> None:
    model = dlib.face_recognition_model_v1(sys.argv[1])
    chips = np.load(sys.argv[2])
    out = np.stack([np.array(model.compute_face_descriptor(c)) for c in chips]).astype(np.float32)
    np.save(sys.argv[3], out)


if __name__ == "__main__":
    main()
