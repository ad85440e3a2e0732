"""face_recognition's HOG detector as a worker, run by the peer venv's Python (no project
imports): per stdin line (the path of an .npy RGB frame) one JSON line
``{"boxes": [[x0, y0, x1, y1], ...], "seconds": detect time}``."""

import importlib.metadata as md
import json
import sys
import time

import face_recognition  # type: ignore[import-not-found]  # the peer venv only
import numpy as np


def main() -> None:
    print(f"ready face_recognition {md.version('face_recognition')}, dlib {md.version('dlib')}")
    sys.stdout.flush()
    for line in sys.stdin:
        frame = np.load(line.strip())
        t0 = time.perf_counter()
        found = face_recognition.face_locations(frame, number_of_times_to_upsample=1, model="hog")
        seconds = time.perf_counter() - t0
        boxes = [[left, top, right, bottom] for top, right, bottom, left in found]
        print(json.dumps({"boxes": boxes, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
