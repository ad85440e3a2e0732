"""Watchlist entries: the plain JSON entries file (enrol -> seal) and the sealed plaintext.

Entries file (what ``lfr-watchlist enrol`` writes and ``seal`` reads)::

    {"embedder_sha256": str, "dim": int,
     "entries": [{"subject_ref": str, "category": str, "threshold": float|null,
                  "embeddings": [[float, ...], ...], "quality": [float, ...]}]}

``quality`` (optional; enrolment writes it) is each embedding's photo quality in [0, 1]
(``central.enrol.photo_quality``: size x detail x frontalness), for ops to review before
sealing; it is not sealed to the device.

Sealed plaintext (inside the HPKE ciphertext of a bundle), compact and exact::

    {"dtype": "float16"|"int8",
     "entries": [{"subject_ref", "category", "threshold",
                  "embeddings": b64url(little-endian rows), "scales": b64url(float32 LE)}]}

``scales`` is present only for int8 (one per row: value = q * scale).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protocol.encoding import Fields, b64url_encode, canonical_json, parse_json_object
from protocol.errors import BadEncoding, MalformedEntries, Oversize
from protocol.limits import DEFAULT_LIMITS, Limits

SUBJECT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DTYPES = ("float16", "int8")
_ENTRY_FIELDS = frozenset({"subject_ref", "category", "threshold", "embeddings", "quality"})
_SEALED_ENTRY_FIELDS = frozenset({"subject_ref", "category", "threshold", "embeddings", "scales"})

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Entry:
    """One watchlist subject. ``embeddings`` is (k, dim) float32, rows L2-normalised."""

    subject_ref: str
    category: str
    threshold: float | None
    embeddings: Matrix
    quality: tuple[float, ...] | None = None  # per embedding row, from enrolment (not sealed)


@dataclass(frozen=True, eq=False)
class Entries:
    embedder_sha256: str
    dim: int
    entries: tuple[Entry, ...]


def _check_embeddings(rows: Matrix, dim: int, where: str) -> Matrix:
    if rows.ndim != 2 or rows.shape[1] != dim or rows.shape[0] < 1:
        raise MalformedEntries(f"{where}: embeddings must be rows of length {dim}")
    if not np.all(np.isfinite(rows)):
        raise MalformedEntries(f"{where}: embeddings contain NaN or infinity")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if np.any(norms < 1e-6):
        raise MalformedEntries(f"{where}: an embedding is all zeros")
    out: Matrix = (rows / norms).astype(np.float32)
    return out


def _entry_header(
    item: Any, where: str, allowed: frozenset[str], refs: set[str]
) -> tuple[Fields, str, str, float | None]:
    fields = Fields(item, where, allowed=allowed)
    ref = fields.text("subject_ref", max_len=128)
    if not SUBJECT_REF.match(ref):
        raise MalformedEntries(
            f"{where}: subject_ref must be an opaque reference "
            "(letters, digits, . _ : -; at most 128)"
        )
    if ref in refs:
        # Not the reference itself: this message is logged, and the entries are secret.
        raise MalformedEntries(f"{where}: its subject_ref appears twice in the list")
    refs.add(ref)
    category = fields.text("category", max_len=64)
    threshold = fields.optional_number("threshold", -1.0, 1.0)
    return fields, ref, category, threshold


def _as_malformed(exc: BadEncoding) -> MalformedEntries:
    return MalformedEntries(str(exc))


def parse_entries_file(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Entries:
    """Parse and validate an entries file; refusals are :class:`MalformedEntries`."""
    what = "entries file"
    fields = Fields(
        parse_json_object(data, what, limits.entries_file_bytes),
        what,
        allowed=frozenset({"embedder_sha256", "dim", "entries"}),
    )
    embedder = fields.text("embedder_sha256", max_len=64)
    if not SHA256_HEX.match(embedder):
        raise MalformedEntries(f"{what}: embedder_sha256 must be 64 lowercase hex digits")
    dim = fields.integer("dim", 1, limits.dim)
    refs: set[str] = set()
    entries = []
    for index, item in enumerate(fields.items("entries", limits.entries, min_items=1)):
        where = f"{what}: entry {index + 1}"
        try:
            entry, ref, category, threshold = _entry_header(item, where, _ENTRY_FIELDS, refs)
            raw = entry.items("embeddings", limits.embeddings_per_entry, min_items=1)
            quality = _quality(entry, len(raw), where)
        except BadEncoding as exc:
            raise _as_malformed(exc) from None
        if not all(isinstance(row, list) and len(row) == dim for row in raw):
            raise MalformedEntries(f"{where}: each embedding must be a list of {dim} numbers")
        try:
            rows = np.asarray(raw, dtype=np.float64).astype(np.float32)
        except (TypeError, ValueError):
            raise MalformedEntries(f"{where}: embeddings must hold numbers only") from None
        if rows.ndim != 2 or any(isinstance(v, bool) for row in raw for v in row):
            raise MalformedEntries(f"{where}: embeddings must hold numbers only")
        rows = _check_embeddings(rows, dim, where)
        entries.append(Entry(ref, category, threshold, rows, quality))
    return Entries(embedder, dim, tuple(entries))


def _quality(entry: Fields, rows: int, where: str) -> tuple[float, ...] | None:
    if entry.is_null("quality"):
        return None
    values = entry.items("quality", rows, min_items=rows)
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise BadEncoding(f"{where}: quality must be numbers in 0..1, one per embedding")
    if not all(0 <= v <= 1 for v in values):  # before float(): 10**400 is valid JSON
        raise BadEncoding(f"{where}: quality must be numbers in 0..1, one per embedding")
    return tuple(float(v) for v in values)


def dump_entries_file(entries: Entries) -> bytes:
    return canonical_json(
        {
            "embedder_sha256": entries.embedder_sha256,
            "dim": entries.dim,
            "entries": [
                {
                    "subject_ref": e.subject_ref,
                    "category": e.category,
                    "threshold": e.threshold,
                    "embeddings": [[float(v) for v in row] for row in e.embeddings],
                    **({"quality": list(e.quality)} if e.quality is not None else {}),
                }
                for e in entries.entries
            ],
        }
    )


def _quantise_int8(rows: Matrix) -> tuple[bytes, bytes]:
    # Per-row scale so small components of a unit vector keep their resolution.
    scales = (np.max(np.abs(rows), axis=1) / 127.0).astype("<f4")
    q = np.clip(np.rint(rows / scales[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scales.tobytes()


def encode_sealed_plaintext(entries: Sequence[Entry], dtype: str) -> bytes:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}")
    items = []
    for entry in entries:
        item: dict[str, Any] = {
            "subject_ref": entry.subject_ref,
            "category": entry.category,
            "threshold": entry.threshold,
        }
        if dtype == "float16":
            item["embeddings"] = b64url_encode(entry.embeddings.astype("<f2").tobytes())
        else:
            values, scales = _quantise_int8(entry.embeddings)
            item["embeddings"], item["scales"] = b64url_encode(values), b64url_encode(scales)
        items.append(item)
    return canonical_json({"dtype": dtype, "entries": items})


def decode_sealed_plaintext(
    data: bytes, dim: int, limits: Limits = DEFAULT_LIMITS
) -> tuple[Entry, ...]:
    """Decode decrypted entries; every problem is a :class:`MalformedEntries`."""
    what = "watchlist entries"
    try:
        return _decode_sealed(data, dim, limits, what)
    except Oversize:
        raise
    except BadEncoding as exc:
        raise _as_malformed(exc) from None


def _decode_sealed(data: bytes, dim: int, limits: Limits, what: str) -> tuple[Entry, ...]:
    fields = Fields(
        parse_json_object(data, what, limits.bundle_bytes),
        what,
        allowed=frozenset({"dtype", "entries"}),
    )
    dtype = fields.text("dtype", max_len=16)
    if dtype not in DTYPES:
        raise MalformedEntries(f"{what}: dtype {dtype!r} is not one of {DTYPES}")
    width = 2 if dtype == "float16" else 1
    max_row_bytes = limits.embeddings_per_entry * dim * width
    refs: set[str] = set()
    out = []
    for index, item in enumerate(fields.items("entries", limits.entries, min_items=1)):
        where = f"{what}: entry {index + 1}"
        entry, ref, category, threshold = _entry_header(item, where, _SEALED_ENTRY_FIELDS, refs)
        raw = entry.b64("embeddings", max_row_bytes)
        if not raw or len(raw) % (dim * width):
            raise MalformedEntries(f"{where}: embeddings are not whole rows of {dim}")
        rows_n = len(raw) // (dim * width)
        if dtype == "float16":
            if entry.has("scales"):
                raise MalformedEntries(f"{where}: scales are only for int8")
            rows = np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(rows_n, dim)
        else:
            raw_scales = entry.b64("scales", 4 * rows_n)
            if len(raw_scales) != 4 * rows_n:
                raise MalformedEntries(f"{where}: int8 needs one float32 scale per row")
            scales = np.frombuffer(raw_scales, dtype="<f4")
            if not np.all(np.isfinite(scales) & (scales > 0)):
                raise MalformedEntries(f"{where}: int8 needs one positive scale per row")
            rows = np.frombuffer(raw, dtype=np.int8).astype(np.float32).reshape(rows_n, dim)
            rows *= scales[:, None].astype(np.float32)
        out.append(Entry(ref, category, threshold, _check_embeddings(rows, dim, where)))
    return tuple(out)
