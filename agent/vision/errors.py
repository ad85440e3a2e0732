"""Exceptions raised by the vision path (model files, manifest, images)."""

from __future__ import annotations


class VisionError(Exception):
    """Base class for every error the vision path raises on bad input or bad files."""


class ManifestError(VisionError):
    """``models/MANIFEST.json`` is missing, malformed, or does not name what was asked for."""


class ModelIntegrityError(VisionError):
    """A model file's sha256 differs from the one pinned in the manifest; it is not loaded."""


class RuntimeUnavailableError(VisionError):
    """No TFLite interpreter (ai-edge-litert, tflite-runtime, TensorFlow) could be imported."""


class ImageDecodeError(VisionError):
    """The bytes are not an image Pillow can decode."""
