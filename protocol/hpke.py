"""HPKE (RFC 9180) single-shot sealing with ``cryptography``'s implementation.

Output is ``enc || ciphertext`` as ``cryptography`` produces it. Suites are named by a short
string carried in the wire formats (``hpke_suite``), so a receiver never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from protocol.errors import DecryptionFailed, UnsupportedAlgorithm
from protocol.keys import HpkePrivateKey, HpkePublicKey, HybridPrivateKey, HybridPublicKey

X25519_CHACHA = "X25519-HKDF-SHA256-ChaCha20Poly1305"
HYBRID_CHACHA = "MLKEM768X25519-HKDF-SHA256-ChaCha20Poly1305"
# ChaCha20-Poly1305 by default: a Raspberry Pi 4 has no AES instructions.
DEFAULT_SUITE = X25519_CHACHA


@dataclass(frozen=True)
class _SuiteSpec:
    kem: hpke.KEM
    hybrid: bool

    def suite(self) -> hpke.Suite:
        return hpke.Suite(self.kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


_SUITES: dict[str, _SuiteSpec] = {
    X25519_CHACHA: _SuiteSpec(hpke.KEM.X25519, hybrid=False),
    HYBRID_CHACHA: _SuiteSpec(hpke.KEM.MLKEM768_X25519, hybrid=True),
}
SUITES: tuple[str, ...] = tuple(_SUITES)


def _spec(name: str) -> _SuiteSpec:
    spec = _SUITES.get(name)
    if spec is None:
        raise UnsupportedAlgorithm(
            f"HPKE suite {name!r} is not supported (use one of {', '.join(SUITES)})"
        )
    return spec


def overhead(name: str) -> int:
    """Bytes that sealing adds: the encapsulated key plus the 16-byte AEAD tag."""
    return _spec(name).kem.enc_length() + 16


def generate_key(name: str) -> HpkePrivateKey:
    return HybridPrivateKey.generate() if _spec(name).hybrid else x25519.X25519PrivateKey.generate()


def suite_of(key: HpkePrivateKey | HpkePublicKey) -> str:
    hybrid = isinstance(key, HybridPrivateKey | HybridPublicKey)
    return HYBRID_CHACHA if hybrid else X25519_CHACHA


def seal(name: str, recipient: HpkePublicKey, plaintext: bytes, info: bytes) -> bytes:
    spec = _spec(name)
    if isinstance(recipient, HybridPublicKey) != spec.hybrid:
        raise ValueError(f"recipient key does not fit HPKE suite {name}")
    key = recipient.hpke_key() if isinstance(recipient, HybridPublicKey) else recipient
    return spec.suite().encrypt(plaintext, key, info=info)


def open_sealed(
    name: str, recipient: HpkePrivateKey, sealed: bytes, info: bytes, what: str
) -> bytes:
    spec = _spec(name)
    if isinstance(recipient, HybridPrivateKey) != spec.hybrid:
        raise DecryptionFailed(f"{what}: sealed with {name}, which this recipient key cannot open")
    if len(sealed) < overhead(name):
        raise DecryptionFailed(f"{what}: ciphertext shorter than the {name} overhead")
    key = recipient.hpke_key() if isinstance(recipient, HybridPrivateKey) else recipient
    try:
        return spec.suite().decrypt(sealed, key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed(
            f"{what}: HPKE open failed (wrong key, or ciphertext or header altered)"
        ) from exc
