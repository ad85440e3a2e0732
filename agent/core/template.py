"""A track's evidence: the mean of the unit embeddings of its best K faces, and its best crop.

Deciding on several faces of one person rather than on one frame is what makes 1:N alerts
trustworthy: on an independent still-image set (issue 16), a template of two photos cut FNIR
at FPIR 1e-3 from 44.7 % to 27.8 %, three photos FNIR at 1e-2 from 36.5 % to 18.6 %. The
faces kept are the best by the quality score (:func:`agent.core.quality.score`); the template
is their plain mean, re-normalised, which is what the 1:N calibration measures for K faces.

Privacy: this is the only place a track holds an embedding or a face's pixels, in memory only,
while the track lives. :meth:`Template.wipe` overwrites the arrays with zeros (not only drops
them) when the track ends, so nothing of a person who matched nobody outlives the track.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from agent.core.matcher import coherence

F32 = npt.NDArray[np.float32]
T = TypeVar("T")
DEFAULT_FACES = 3


def wipe(value: object) -> None:
    """Overwrite a numpy array in place (a crop, an embedding); other values are opaque."""
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value.fill(0)


class Template(Generic[T]):
    """Up to ``faces`` unit embeddings (best quality first to stay) and the best face's crop."""

    def __init__(self, faces: int = DEFAULT_FACES) -> None:
        if faces < 1:
            raise ValueError("a template holds at least one face")
        self.capacity = faces
        self._rows: F32 | None = None  # (capacity, dim), allocated on the first face
        self._quality: list[float] = []  # quality of row i
        self.crop: T | None = None  # the best face's crop: the probe if the track alerts
        self.crop_quality = -1.0
        self.crop_at: datetime | None = None  # when the best face was seen
        self.changed = False  # a face entered since the last decision

    @property
    def size(self) -> int:
        return len(self._quality)

    @property
    def free(self) -> int:
        """How many more faces the template takes before a face must beat its weakest."""
        return self.capacity - self.size

    @property
    def full(self) -> bool:
        return self.free == 0

    @property
    def floor(self) -> float:
        """The weakest face's quality (0 while there is room)."""
        return min(self._quality) if self.full else 0.0

    def add(self, embedding: F32, quality: float) -> bool:
        """Take a face's embedding if there is room or it beats the weakest face; True if taken."""
        norm = float(np.linalg.norm(embedding))
        if norm == 0.0 or not np.isfinite(norm):
            return False
        if self._rows is None:
            self._rows = np.zeros((self.capacity, embedding.shape[0]), np.float32)
        if not self.full:
            slot = self.size
            self._quality.append(quality)
        else:
            slot = int(np.argmin(self._quality))
            if quality <= self._quality[slot]:
                return False
            self._quality[slot] = quality
        np.divide(embedding, norm, out=self._rows[slot], casting="unsafe")
        self.changed = True
        return True

    def wants_crop(self, quality: float) -> bool:
        """Would a face of this quality be the best so far (worth copying its pixels)?"""
        return quality > self.crop_quality

    def offer_crop(self, quality: float, crop: T, at: datetime) -> bool:
        """Keep ``crop`` if it is the best face so far (the previous one is wiped)."""
        if not self.wants_crop(quality):
            return False
        wipe(self.crop)
        self.crop, self.crop_quality, self.crop_at = crop, quality, at
        return True

    def vector(self) -> F32:
        """The template: the mean of the unit embeddings held, as a unit vector."""
        if self._rows is None or not self._quality:
            raise ValueError("an empty template has no vector")
        mean: F32 = self._rows[: self.size].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            mean /= norm
        return mean

    def coherence(self) -> float:
        """The norm of the mean of the unit embeddings held: 1 for K copies of one face, lower
        the more the faces differ. The template's score is the mean of its faces' scores
        divided by it, so the 1:N threshold depends on it (MatchThreshold.by_coherence)."""
        if self._rows is None or not self._quality:
            raise ValueError("an empty template has no coherence")
        return coherence(self._rows[: self.size])

    def weighted_vector(self) -> F32:
        """The quality-weighted mean of the unit embeddings held, as a unit vector: not what the
        agent decides on (the calibration is for the plain mean); the walk-through's
        ``--diagnose`` measures whether weighting would help."""
        if self._rows is None or not self._quality:
            raise ValueError("an empty template has no vector")
        weights = np.asarray(self._quality, np.float32)
        if float(weights.sum()) <= 0.0:
            return self.vector()
        mean: F32 = (weights[:, None] * self._rows[: self.size]).sum(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            mean /= norm
        return mean

    def wipe(self) -> None:
        """Zero every array held (embeddings, crop) and forget them."""
        wipe(self._rows)
        wipe(self.crop)
        self._rows, self.crop = None, None
        self._quality.clear()
        self.crop_quality, self.crop_at, self.changed = -1.0, None, False

    @property
    def arrays(self) -> list[npt.NDArray[np.generic]]:
        """The arrays held now (for tests that check they are zeroed at the end)."""
        held: list[npt.NDArray[np.generic]] = []
        if self._rows is not None:
            held.append(self._rows)
        if isinstance(self.crop, np.ndarray):
            held.append(self.crop)
        return held
