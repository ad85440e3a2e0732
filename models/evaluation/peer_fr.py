"""face_recognition (dlib) on LFW images, run in its own venv by eval_lfw.py.

    peer_fr.py embed LFW_DIR IMAGE_LIST OUT.npz     128-d encodings of every listed image
    peer_fr.py time  LFW_DIR IMAGE_LIST OUT.npz     per-face seconds (detect, encode) per image
    peer_fr.py serve LFW_DIR IMAGE_LIST              decode every listed image, then per stdin
                                                     line "i": print "detect_s encode_s cpu_s" of image i
                                                     (speed.py interleaves this with our pipeline)

HOG detection (upsample 1, the library default) and the central face; where HOG finds no face the
whole image is used as the face box, so every pair gets a score. Image decode is not timed.
"""

import importlib.metadata as md
import sys
import time
from pathlib import Path

import face_recognition
import numpy as np


def face(img):
    t0 = time.perf_counter()
    locs = face_recognition.face_locations(img)
    t1 = time.perf_counter()
    h, w = img.shape[:2]
    found = bool(locs)
    if locs:
        locs = [
            min(
                locs,
                key=lambda b: ((b[0] + b[2]) / 2 - h / 2) ** 2 + ((b[1] + b[3]) / 2 - w / 2) ** 2,
            )
        ]
    else:
        locs = [(0, w, h, 0)]
    enc = face_recognition.face_encodings(img, known_face_locations=locs)[0]
    t2 = time.perf_counter()
    return enc, found, (t1 - t0, t2 - t1)


def main() -> None:
    mode, lfw, lst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else ""
    images = lst.read_text().splitlines()
    version = f"face_recognition {md.version('face_recognition')}, dlib {md.version('dlib')}"
    if mode == "serve":
        imgs = [face_recognition.load_image_file(str(lfw / rel)) for rel in images]
        import json

        import dlib

        info = {"images": len(imgs), "version": version}
        info |= {k: bool(getattr(dlib, k, False)) for k in ("DLIB_USE_BLAS", "DLIB_USE_CUDA")}
        print("ready " + json.dumps(info), flush=True)
        for line in sys.stdin:
            c0 = time.process_time()
            td, te = face(imgs[int(line)])[2]
            cpu = time.process_time() - c0
            print(f"{td:.9f} {te:.9f} {cpu:.9f}", flush=True)
        return
    if mode == "time":
        imgs = [face_recognition.load_image_file(str(lfw / rel)) for rel in images]
        times = np.array([face(img)[2] for img in imgs])
        np.savez(out, times=times, version=version)
        return
    e = np.zeros((len(images), 128), dtype=np.float32)
    found = np.zeros(len(images), dtype=bool)
    for i, rel in enumerate(images):
        e[i], found[i], _ = face(face_recognition.load_image_file(str(lfw / rel)))
        if i % 500 == 0:
            print(f"peer {i}/{len(images)}", file=sys.stderr, flush=True)
    np.savez(out, e=e, found=found, version=version)


if __name__ == "__main__":
    main()
