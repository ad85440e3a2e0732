"""The enrolment request a new device hands to ops (``request.json``).

It carries the device's public keys and a CSR for its TLS certificate, and is signed with the
device's own Ed25519 key (proof that the device holds it); the CSR is signed with its TLS key.
Ops verify both before issuing anything. Pure: bytes in, a verified request or a rejection out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from protocol import hpke
from protocol.encoding import (
    Fields,
    b64url_decode,
    b64url_encode,
    canonical_json,
    format_time,
    parse_json_object,
)
from protocol.errors import BadEncoding, BadSignature
from protocol.keys import (
    HpkePublicKey,
    load_hpke_public,
    load_signing_public,
    public_pem,
)
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.names import check_name

FORMAT = "lfr-enrolment-request/1"
_FIELDS = frozenset(
    {
        "format",
        "device_id",
        "site",
        "created_at",
        "signing_public_key",
        "hpke_public_keys",
        "csr",
        "signature",
    }
)


@dataclass(frozen=True)
class EnrolmentRequest:
    device_id: str
    site: str
    created_at: datetime
    signing_key: ed25519.Ed25519PublicKey
    hpke_keys: dict[str, HpkePublicKey]  # by suite name
    csr: x509.CertificateSigningRequest

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "created_at": format_time(self.created_at),
            "signing_public_key": public_pem(self.signing_key).decode("ascii"),
            "hpke_public_keys": {
                s: public_pem(k).decode("ascii") for s, k in sorted(self.hpke_keys.items())
            },
            "csr": self.csr.public_bytes(Encoding.PEM).decode("ascii"),
        }


def sign_request(request: EnrolmentRequest, key: ed25519.Ed25519PrivateKey) -> bytes:
    body = request.unsigned_json()
    signature = key.sign(canonical_json(body))
    return canonical_json({**body, "signature": b64url_encode(signature)}) + b"\n"


def csr_common_name(csr: x509.CertificateSigningRequest) -> str | None:
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if len(names) == 1 else None
    return value if isinstance(value, str) else None


def parse_request(data: bytes, limits: Limits = DEFAULT_LIMITS) -> EnrolmentRequest:
    """Parse and verify request.json: its self-signature, the CSR's signature and CN."""
    what = "request.json"
    obj = parse_json_object(data, what, limits.request_bytes)
    fields = Fields(obj, what, allowed=_FIELDS)
    if fields.text("format", max_len=40) != FORMAT:
        raise BadEncoding(f"{what}: format is not {FORMAT!r}")
    device_id = check_name(fields.text("device_id", max_len=63), f"{what}: device_id")
    site = check_name(fields.text("site", max_len=63), f"{what}: site")
    signing_key = load_signing_public(
        fields.text("signing_public_key", max_len=1024).encode("ascii", "replace"),
        f"{what}: signing_public_key",
    )
    signature = b64url_decode(fields.text("signature", max_len=128), f"{what}: signature")
    body = {k: v for k, v in obj.items() if k != "signature"}
    try:
        signing_key.verify(signature, canonical_json(body))
    except InvalidSignature:
        raise BadSignature(f"{what}: not signed by the device key it names") from None
    hpke_fields = fields.sub("hpke_public_keys", allowed=frozenset(hpke.SUITES))
    hpke_keys: dict[str, HpkePublicKey] = {}
    for suite in hpke.SUITES:
        if hpke_fields.has(suite):
            key = load_hpke_public(
                hpke_fields.text(suite, max_len=8192).encode("ascii", "replace"),
                f"{what}: hpke_public_keys[{suite}]",
            )
            if hpke.suite_of(key) != suite:
                raise BadEncoding(f"{what}: hpke_public_keys[{suite}] is the wrong key type")
            hpke_keys[suite] = key
    if hpke.DEFAULT_SUITE not in hpke_keys:
        raise BadEncoding(f"{what}: no {hpke.DEFAULT_SUITE} key in hpke_public_keys")
    try:
        csr = x509.load_pem_x509_csr(fields.text("csr", max_len=8192).encode("ascii", "replace"))
    except ValueError:
        raise BadEncoding(f"{what}: csr is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise BadSignature(f"{what}: the CSR's signature does not verify")
    common_name = csr_common_name(csr)
    if common_name != device_id:
        raise BadEncoding(
            f"{what}: the CSR's CN {common_name!r} differs from device_id {device_id!r}"
        )
    return EnrolmentRequest(device_id, site, fields.time("created_at"), signing_key, hpke_keys, csr)
