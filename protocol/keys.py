"""Key types of the system and their PEM form (PKCS#8 private, SubjectPublicKeyInfo public).

Pure: bytes in, key objects out. Reading and writing key *files* (modes, atomicity) lives at
the edges in :mod:`lfrkit.files`.

- Signing (events, watchlists, commands, enrolment requests): Ed25519.
- Encryption to a recipient (watchlist to a device, probe crop to the control room): HPKE,
  see :mod:`protocol.hpke` for the suites. A hybrid ML-KEM-768+X25519 key is two PEM blocks
  (ML-KEM first, X25519 second) because neither RFC nor library defines one PEM for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey, MLKEM768X25519PublicKey

from protocol.errors import BadEncoding

_PEM_END = b"-----END "


@dataclass(frozen=True)
class HybridPrivateKey:
    """ML-KEM-768 + X25519 recipient key, kept as its parts so it can be stored."""

    mlkem: mlkem.MLKEM768PrivateKey
    x25519: x25519.X25519PrivateKey

    @classmethod
    def generate(cls) -> HybridPrivateKey:
        return cls(mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate())

    def public_key(self) -> HybridPublicKey:
        return HybridPublicKey(self.mlkem.public_key(), self.x25519.public_key())

    def hpke_key(self) -> MLKEM768X25519PrivateKey:
        return MLKEM768X25519PrivateKey(self.mlkem, self.x25519)


@dataclass(frozen=True)
class HybridPublicKey:
    mlkem: mlkem.MLKEM768PublicKey
    x25519: x25519.X25519PublicKey

    def hpke_key(self) -> MLKEM768X25519PublicKey:
        return MLKEM768X25519PublicKey(self.mlkem, self.x25519)


HpkePrivateKey = x25519.X25519PrivateKey | HybridPrivateKey
HpkePublicKey = x25519.X25519PublicKey | HybridPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | HpkePrivateKey
PublicKey = ed25519.Ed25519PublicKey | HpkePublicKey


def _split_pem(data: bytes, what: str) -> list[bytes]:
    blocks: list[bytes] = []
    rest = data
    while True:
        start = rest.find(b"-----BEGIN ")
        if start < 0:
            break
        end = rest.find(_PEM_END, start)
        close = rest.find(b"-----", end + len(_PEM_END)) if end >= 0 else -1
        if close < 0:
            raise BadEncoding(f"{what}: truncated PEM block")
        blocks.append(rest[start : close + 5] + b"\n")
        rest = rest[close + 5 :]
    if not blocks:
        raise BadEncoding(f"{what}: no PEM block found")
    return blocks


def _pkcs8(
    key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey,
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(
    key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey | mlkem.MLKEM768PublicKey,
) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: PrivateKey) -> bytes:
    if isinstance(key, HybridPrivateKey):
        return _pkcs8(key.mlkem) + _pkcs8(key.x25519)
    return _pkcs8(key)


def public_pem(key: PublicKey) -> bytes:
    if isinstance(key, HybridPublicKey):
        return _spki(key.mlkem) + _spki(key.x25519)
    return _spki(key)


def _load_private_block(block: bytes, what: str) -> object:
    try:
        return serialization.load_pem_private_key(block, password=None)
    except (ValueError, TypeError) as exc:
        raise BadEncoding(f"{what}: not an unencrypted PKCS#8 private key ({exc})") from None


def _load_public_block(block: bytes, what: str) -> object:
    try:
        return serialization.load_pem_public_key(block)
    except (ValueError, TypeError) as exc:
        raise BadEncoding(f"{what}: not a SubjectPublicKeyInfo public key ({exc})") from None


def load_signing_private(pem: bytes, what: str = "signing key") -> ed25519.Ed25519PrivateKey:
    blocks = _split_pem(pem, what)
    key = _load_private_block(blocks[0], what)
    if len(blocks) != 1 or not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BadEncoding(f"{what}: expected one Ed25519 private key")
    return key


def load_signing_public(pem: bytes, what: str = "public key") -> ed25519.Ed25519PublicKey:
    blocks = _split_pem(pem, what)
    key = _load_public_block(blocks[0], what)
    if len(blocks) != 1 or not isinstance(key, ed25519.Ed25519PublicKey):
        raise BadEncoding(f"{what}: expected one Ed25519 public key")
    return key


def load_hpke_private(pem: bytes, what: str = "HPKE key") -> HpkePrivateKey:
    keys = [_load_private_block(b, what) for b in _split_pem(pem, what)]
    match keys:
        case [x25519.X25519PrivateKey() as x]:
            return x
        case [mlkem.MLKEM768PrivateKey() as m, x25519.X25519PrivateKey() as x]:
            return HybridPrivateKey(m, x)
    raise BadEncoding(f"{what}: expected an X25519 or ML-KEM-768+X25519 private key")


def load_hpke_public(pem: bytes, what: str = "HPKE public key") -> HpkePublicKey:
    keys = [_load_public_block(b, what) for b in _split_pem(pem, what)]
    match keys:
        case [x25519.X25519PublicKey() as x]:
            return x
        case [mlkem.MLKEM768PublicKey() as m, x25519.X25519PublicKey() as x]:
            return HybridPublicKey(m, x)
    raise BadEncoding(f"{what}: expected an X25519 or ML-KEM-768+X25519 public key")


def key_id(public: ed25519.Ed25519PublicKey) -> str:
    """Stable id of a signing key: the first 128 bits of SHA-256 over its raw bytes, hex."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:32]
