"""One probe against the whole watchlist: one matrix-vector product, top-1 and margin.

Rows (every embedding of every entry) sit in one matrix; an entry's score is the best of its
rows. Storage is float32 (fastest with BLAS), float16 (half the memory) or int8 with a per-row
scale (a quarter); scores are always computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.entries import Entry

F32 = npt.NDArray[np.float32]
STORAGE = ("float32", "float16", "int8")


@dataclass(frozen=True)
class Match:
    entry: int
    subject_ref: str
    category: str
    score: float
    threshold: float
    margin: float  # score minus the best other entry's score (-1, the floor, if none)


class Matcher:
    def __init__(
        self, entries: Sequence[Entry], default_threshold: float, storage: str = "float32"
    ) -> None:
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {STORAGE}")
        if not entries:
            raise ValueError("a matcher needs at least one entry")
        rows = np.concatenate([e.embeddings for e in entries]).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        counts = np.array([len(e.embeddings) for e in entries])
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        self._scale: F32 | None = None
        if storage == "int8":
            scale = np.max(np.abs(rows), axis=1) / 127.0
            self._rows: npt.NDArray[np.generic] = np.rint(rows / scale[:, None]).astype(np.int8)
            self._scale = scale.astype(np.float32)
        else:
            self._rows = rows.astype(storage)
        self._refs = [e.subject_ref for e in entries]
        self._categories = [e.category for e in entries]
        self._thresholds = np.array(
            [default_threshold if e.threshold is None else e.threshold for e in entries],
            dtype=np.float32,
        )
        self.dim = rows.shape[1]
        self.storage = storage

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes + (self._scale.nbytes if self._scale is not None else 0))

    def entry_scores(self, probe: F32) -> F32:
        """Cosine of the (normalised) probe with each entry's best row."""
        if probe.shape != (self.dim,):
            raise ValueError(f"probe must have shape ({self.dim},), not {probe.shape}")
        norm = float(np.linalg.norm(probe))
        unit = (probe / norm if norm > 0 else probe).astype(np.float32)
        if self._scale is not None:
            row_scores = (self._rows.astype(np.float32) @ unit) * self._scale
        else:
            row_scores = (self._rows @ unit.astype(self._rows.dtype)).astype(np.float32)
        best: F32 = np.maximum.reduceat(row_scores, self._starts).astype(np.float32)
        return best

    def match(self, probe: F32) -> Match | None:
        """The best entry if it reaches its threshold, else None (the face matches nobody)."""
        scores = self.entry_scores(probe)
        top = int(np.argmax(scores))
        score = float(scores[top])
        if score < float(self._thresholds[top]):
            return None
        second = float(np.max(np.delete(scores, top))) if len(scores) > 1 else -1.0
        margin = score - second
        return Match(
            top, self._refs[top], self._categories[top], score, float(self._thresholds[top]), margin
        )
