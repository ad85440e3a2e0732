"""Officers' names and passwords: scrypt (``cryptography``) with a per-officer salt.

Parameters: N = 2**15, r = 8, p = 1, 32-byte key, 16-byte random salt (RFC 7914; OWASP's
minimum for scrypt is N = 2**17 at r = 8; 2**15 keeps a login under a second and at 32 MiB
on a control-room workstation, and the login throttle bounds online guessing anyway).
The parameters are stored with each hash, so raising them later re-hashes nobody's
password by surprise: old hashes still verify with the parameters they were made with.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import re

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES, SALT_BYTES = 2**15, 8, 1, 32, 16
MIN_LENGTH, MAX_LENGTH = 12, 1024  # bytes of UTF-8; the upper bound caps the work per guess
_FORMAT = re.compile(
    r"^scrypt\$n=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/=]{1,64})\$([A-Za-z0-9+/=]{1,128})$"
)


# Officers' names as shown on the page and in the audit: "PC 4521 Khan", "ps.jones".
OFFICER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._'-]{0,62}[A-Za-z0-9.]$|^[A-Za-z0-9]$")


def valid_name(name: str) -> bool:
    return bool(OFFICER_NAME.match(name))


class WeakPassword(ValueError):
    """A password refused by the policy (too short, too long, or the officer's name)."""


def check_policy(password: str, name: str) -> None:
    size = len(password.encode("utf-8", "surrogatepass"))
    if size < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if size > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} bytes")
    if password.strip().casefold() == name.strip().casefold():
        raise WeakPassword("the password must not be the officer's name")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(
        password.encode("utf-8", "surrogatepass")[: MAX_LENGTH + 1]
    )


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return (
        f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}$"
        f"{base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    )


# Verified against when the officer does not exist, so that an unknown name costs the same
# scrypt work as a wrong password (no user enumeration by timing).
@functools.cache
def _dummy() -> str:
    return hash_password("not-an-officer-" + base64.b64encode(os.urandom(12)).decode())


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check of ``password`` against a stored hash; None = unknown officer."""
    match = _FORMAT.match(stored or _dummy())
    if match is None:
        raise ValueError("stored password hash is not in the scrypt$n=..,r=..,p=..$salt$key form")
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if n > 2**20 or n < 2 or n & (n - 1) or r > 32 or p > 16:
        raise ValueError("stored password hash has out-of-range scrypt parameters")
    salt, expected = base64.b64decode(match.group(4)), base64.b64decode(match.group(5))
    if len(password.encode("utf-8", "surrogatepass")) > MAX_LENGTH:
        _derive("", salt, n, r, p)  # same cost, always refused
        return False
    ok = hmac.compare_digest(_derive(password, salt, n, r, p), expected)
    return ok and stored is not None
