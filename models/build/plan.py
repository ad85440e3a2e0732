"""What the build produces: every candidate file, and which of them are shipped (committed)."""

from __future__ import annotations

from typing import Any

# file name -> family, variant; the float file each quantised one derives from.
CANDIDATES: dict[str, dict[str, str]] = {
    "blazeface_short_float32.tflite": {"family": "blazeface_short", "variant": "float32"},
    "blazeface_full_float32.tflite": {"family": "blazeface_full", "variant": "float32"},
    "yunet_float32.tflite": {"family": "yunet", "variant": "float32"},
    "mobilefacenet_float32.tflite": {"family": "mobilefacenet", "variant": "float32"},
    "mobilefacenet_int8w.tflite": {"family": "mobilefacenet", "variant": "int8_weight_only"},
    "mobilefacenet_int8dr.tflite": {"family": "mobilefacenet", "variant": "int8_dynamic_range"},
    "mobilefacenet_int8.tflite": {"family": "mobilefacenet", "variant": "int8_static"},
    "sface_float32.tflite": {"family": "sface", "variant": "float32"},
    "sface_int8w.tflite": {"family": "sface", "variant": "int8_weight_only"},
    "sface_int8dr.tflite": {"family": "sface", "variant": "int8_dynamic_range"},
    "sface_int8.tflite": {"family": "sface", "variant": "int8_static"},
    "dlib_float32.tflite": {"family": "dlib_resnet", "variant": "float32"},
    "dlib_int8w.tflite": {"family": "dlib_resnet", "variant": "int8_weight_only"},
    "dlib_int8dr.tflite": {"family": "dlib_resnet", "variant": "int8_dynamic_range"},
    "dlib_int8.tflite": {"family": "dlib_resnet", "variant": "int8_static"},
}

# Committed files (each well under 20 MB); the reasons are in build/notes.json and MANIFEST.json.
# sface_float32.tflite (38.6 MB) and dlib_float32.tflite (22.4 MB) are built and measured but not
# committed: over the 20 MB limit.
SHIPPED: list[str] = [
    "blazeface_short_float32.tflite",
    "blazeface_full_float32.tflite",
    "yunet_float32.tflite",
    "mobilefacenet_float32.tflite",
    "mobilefacenet_int8w.tflite",
    "sface_int8.tflite",
    "dlib_int8dr.tflite",
]

# No flip averaging (issue 15, models/README.md "Flip averaging"): embedding a face and its
# mirror costs two model runs for +0.3 points of TAR; the agent embeds a track several times,
# and a second view of the person is worth more than a mirror of the first.
PROFILES: dict[str, dict[str, Any]] = {
    "fast": {
        "detector": "blazeface_short_float32.tflite",
        "blocks": [{"model": "mobilefacenet_int8w.tflite", "weight": 1.0, "flip": False}],
    },
    "accurate": {
        "detector": "blazeface_short_float32.tflite",
        # weight None: computed by fusion.py from the calibration impostor score spread
        "blocks": [
            {"model": "mobilefacenet_int8w.tflite", "weight": None, "flip": False},
            {"model": "sface_int8.tflite", "weight": None, "flip": False},
            {"model": "dlib_int8dr.tflite", "weight": None, "flip": False},
        ],
    },
}
