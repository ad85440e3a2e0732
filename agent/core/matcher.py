"""One probe against the whole watchlist: one matrix-vector product, top-1 and margin.

The probe is one face's embedding (the one-frame rule) or a track's template (the track rule,
:mod:`agent.core.template`); either way a match needs the entry's threshold and, if asked, a
margin to the second-best entry.

Rows (every embedding of every entry) sit in one matrix; an entry's score is the best of its
rows. With ``entry_means`` (the signed threshold counts them), an entry of several photos has one
more row: the mean of its photos' unit embeddings, renormalised, which averages away what is
particular to each photo (models/README.md: at equal FPIR, 35-50 % fewer misses for people
enrolled from two photos).

Storage is float32 (fastest with BLAS), float16 (half the memory) or int8 with a per-row scale
(a quarter); scores are always computed in float32. float16 and int8 rows are converted
a block at a time, so matching a probe never holds a float32 copy of the whole list (which
would undo the memory they save) and still runs on BLAS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.entries import Entry

Bins = tuple[tuple[float, float], ...]  # protocol.watchlist.Bins: (lowest coherence, threshold)

F32 = npt.NDArray[np.float32]
STORAGE = ("float32", "float16", "int8")
# 1024 x 448 x 4 bytes = 1.8 MiB stays in cache: measured 7x faster for int8 than converting
# the whole matrix at once, 2x for float16, and bigger blocks (7 MiB) were slower than both.
BLOCK_ROWS = 1024


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
        self,
        entries: Sequence[Entry],
        default_threshold: float,
        storage: str = "float32",
        by_coherence: Bins | None = None,
        *,
        entry_means: bool = False,
    ) -> None:
        """``by_coherence``: the list's threshold by a template's coherence (the signed
        schedule, already raised to any local floor); ``default_threshold`` is used for a
        probe of unknown coherence (one frame's face)."""
        if storage not in STORAGE:
            raise ValueError(f"storage must be one of {STORAGE}")
        if not entries:
            raise ValueError("a matcher needs at least one entry")
        blocks = [_rows(e.embeddings, entry_means) for e in entries]
        rows = np.concatenate(blocks, dtype=np.float32)
        counts = np.array([len(b) for b in blocks])
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
            # A per-entry threshold can only raise the list's (ops tighten one entry).
            [
                default_threshold if e.threshold is None else max(default_threshold, e.threshold)
                for e in entries
            ],
            dtype=np.float32,
        )
        self._own = np.array(
            [-np.inf if e.threshold is None else e.threshold for e in entries], np.float32
        )
        self._by_coherence = by_coherence
        self.dim = rows.shape[1]
        self.storage = storage

    @property
    def rows(self) -> int:
        """Rows searched per probe (photos, and mean rows when they are on)."""
        return len(self._rows)

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
        best: F32 = np.maximum.reduceat(self._row_scores(unit), self._starts).astype(np.float32)
        return best

    def _row_scores(self, unit: F32) -> F32:
        if self._rows.dtype == np.float32:
            scores: F32 = np.asarray(self._rows, dtype=np.float32) @ unit  # no copy
            return scores
        scores = np.empty(len(self._rows), np.float32)
        for start in range(0, len(self._rows), BLOCK_ROWS):
            block = self._rows[start : start + BLOCK_ROWS].astype(np.float32)
            scores[start : start + BLOCK_ROWS] = block @ unit
        if self._scale is not None:
            scores *= self._scale
        return scores

    def threshold(self, entry: int, coherence: float | None = None) -> float:
        """Entry ``entry``'s threshold for a probe of this coherence (None: unknown)."""
        if self._by_coherence is None or coherence is None or not np.isfinite(coherence):
            return float(self._thresholds[entry])
        listed = self._by_coherence[0][1]
        for lo, t in self._by_coherence:
            if coherence >= lo:
                listed = t
        return max(listed, float(self._own[entry]))

    def match(
        self, probe: F32, *, min_margin: float = 0.0, coherence: float | None = None
    ) -> Match | None:
        """The best entry if it reaches its threshold (for a template, the one for its
        ``coherence``) and leads the second-best entry by at least ``min_margin``, else None
        (the probe matches nobody, or not unambiguously)."""
        scores = self.entry_scores(probe)
        top = int(np.argmax(scores))
        score = float(scores[top])
        threshold = self.threshold(top, coherence)
        if score < threshold:
            return None
        second = float(np.max(np.delete(scores, top))) if len(scores) > 1 else -1.0
        margin = score - second
        if margin < min_margin:
            return None
        return Match(top, self._refs[top], self._categories[top], score, threshold, margin)


def unit_rows(embeddings: npt.ArrayLike) -> F32:
    """An entry's photo embeddings as unit rows, normalised in float32 (float16/int8 lists)."""
    rows = np.asarray(embeddings, dtype=np.float32)
    unit: F32 = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def coherence(unit: F32) -> float:
    """The norm of the mean of unit rows: 1 for one photo (or copies of it), lower the more the
    photos differ. A mean row's score is the photos' mean score divided by it, which is why the
    seal counts a mean row by it (central.thresholds.mean_row_weight)."""
    return float(np.linalg.norm(unit.mean(axis=0)))


def _rows(embeddings: npt.NDArray[np.float32], mean: bool) -> F32:
    """An entry's unit rows, and with ``mean`` (and several photos) their renormalised mean."""
    unit = unit_rows(embeddings)
    if not mean or len(unit) < 2:
        return unit
    centre = unit.mean(axis=0)
    norm = float(np.linalg.norm(centre))  # the entry's coherence
    if norm < 1e-6:  # photos that cancel out: no direction to add
        return unit
    out: F32 = np.concatenate([unit, (centre / norm)[None, :]])
    return out
