"""Looks for secrets in text: private keys (PEM body, raw bytes as hex/base64), embeddings
(raw bytes as base64, printed decimals) and subject references.

Base64 and hex forms are matched by 24-character windows, so a secret is found even when a
log line cuts it, wraps it or embeds it in a longer token.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

WINDOW = 24
TOKEN = re.compile(rb"[A-Za-z0-9+/=_-]{%d,}" % WINDOW)
PEM = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END", re.S)


def _forms(raw: bytes) -> list[bytes]:
    return [
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
    ]


@dataclass
class Secrets:
    windows: dict[bytes, str] = field(default_factory=dict)  # window -> what it belongs to
    decimals: list[tuple[re.Pattern[bytes], str]] = field(default_factory=list)
    words: dict[bytes, str] = field(default_factory=dict)  # exact strings (subject refs)
    keys: int = 0
    embeddings: int = 0

    def add_token(self, token: bytes, what: str) -> None:
        for start in range(0, max(1, len(token) - WINDOW + 1)):
            window = token[start : start + WINDOW]
            if len(window) == WINDOW:
                self.windows.setdefault(window, what)

    def add_private_key_file(self, path: Path) -> None:
        data = path.read_bytes()
        for number, match in enumerate(PEM.finditer(data)):
            what = f"private key {path.name}#{number}"
            self.keys += 1
            for line in match.group(1).split():
                if len(line) >= WINDOW:
                    self.add_token(line, what)
            block = match.group(0) + b" PRIVATE KEY-----\n"
            try:
                key = serialization.load_pem_private_key(block, None)
            except (ValueError, TypeError):
                continue  # (a hybrid ML-KEM block) its PEM body lines are covered above
            if isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
                raw = key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
                for form in _forms(raw):
                    self.add_token(form, what + " (raw)")

    def add_embedding(self, vector: npt.NDArray[np.float32], what: str) -> None:
        self.embeddings += 1
        for dtype in (np.float32, np.float16):
            for form in _forms(vector.astype(dtype).tobytes()):
                self.add_token(form, what)
        # Two consecutive components printed with >= 4 decimals (numpy, repr, f-strings):
        # matched on their first three decimals, truncated, which any such printing shows.
        a, b = (f"{int(abs(float(x)) * 1000) / 1000:.3f}" for x in vector[:2])
        self.decimals.append(
            (
                re.compile(
                    rb"-?%s\d+[\s,;\]]+-?%s\d" % (re.escape(a.encode()), re.escape(b.encode()))
                ),
                what,
            )
        )

    def add_word(self, word: str, what: str) -> None:
        self.words[word.encode()] = what


@dataclass(frozen=True)
class Finding:
    file: str
    what: str
    excerpt: str


def scan(text: bytes, name: str, secrets: Secrets, *, words: bool) -> list[Finding]:
    found: list[Finding] = []
    for token in TOKEN.finditer(text):
        value = token.group(0)
        for start in range(len(value) - WINDOW + 1):
            what = secrets.windows.get(value[start : start + WINDOW])
            if what is not None:
                found.append(Finding(name, what, _excerpt(text, token.start())))
                break
    for pattern, what in secrets.decimals:
        for match in pattern.finditer(text):
            found.append(Finding(name, what, _excerpt(text, match.start())))
    if words:
        for word, what in secrets.words.items():
            at = text.find(word)
            if at >= 0:
                found.append(Finding(name, what, _excerpt(text, at)))
    return found


def _excerpt(text: bytes, at: int) -> str:
    # Shown only as a position and a few characters, so a failure report is not a leak.
    return f"offset {at}: {text[at : at + 12]!r}..."


def private_key_files(root: Path) -> Iterable[Path]:
    for path in root.rglob("*"):
        try:
            small = path.is_file() and path.stat().st_size < 64 * 1024
            if small and b"PRIVATE KEY-----" in path.read_bytes():
                yield path
        except OSError:
            continue
