"""Signed commands to one device: wipe, pause, resume.

Signed like a watchlist (general JSON JWS, ``typ`` ``lfr-command+jws``, threshold of pinned
ops keys), with a per-device counter that must strictly increase and a short validity window,
so a replayed or forged command does nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.encoding import Fields, canonical_json, format_time, parse_json_object, require_aware
from protocol.errors import (
    BadEncoding,
    Expired,
    NotYetValid,
    RollbackRejected,
    UnsupportedAlgorithm,
    WrongDevice,
)
from protocol.jws import add_signature, parse_general, require_threshold, sign_general
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.trust import TrustPolicy

FORMAT = "lfr-command/1"
TYP = "lfr-command+jws"
MAX_VALIDITY = timedelta(hours=1)
DEFAULT_SKEW = timedelta(minutes=5)
_FIELDS = frozenset(
    {"format", "device_id", "site", "command", "counter", "issued_at", "expires_at"}
)


class Action(StrEnum):
    WIPE = "wipe"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True)
class Command:
    device_id: str
    site: str
    action: Action
    counter: int
    issued_at: datetime
    expires_at: datetime
    signed_by: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "device_id": self.device_id,
            "site": self.site,
            "command": self.action.value,
            "counter": self.counter,
            "issued_at": format_time(self.issued_at),
            "expires_at": format_time(self.expires_at),
        }


def sign_command(
    command: Command,
    signers: Sequence[tuple[ed25519.Ed25519PrivateKey, str]],
    *,
    allow_unsigned: bool = False,
) -> bytes:
    """``allow_unsigned``: fewer signers than devices require is fine (a command file others
    sign with :func:`add_command_signature` before it is sent)."""
    _parse(command.to_json())
    return sign_general(
        canonical_json(command.to_json()), signers, TYP, allow_unsigned=allow_unsigned
    )


@dataclass(frozen=True)
class CommandDraft:
    command: Command
    signatures: tuple[str, ...]  # key ids so far, not verified
    payload_sha256: str


def read_command_draft(data: bytes, limits: Limits = DEFAULT_LIMITS) -> CommandDraft:
    jws = parse_general(
        data, TYP, "command", limits.command_bytes, limits.signatures, min_signatures=0
    )
    command = _parse(parse_json_object(jws.payload, "command payload", limits.command_bytes))
    return CommandDraft(
        command, tuple(s.kid for s in jws.signatures), hashlib.sha256(jws.payload).hexdigest()
    )


def add_command_signature(
    data: bytes, key: ed25519.Ed25519PrivateKey, kid: str, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    read_command_draft(data, limits)
    return add_signature(
        data,
        key,
        kid,
        typ=TYP,
        what="command",
        max_bytes=limits.command_bytes,
        max_signatures=limits.signatures,
    )


def _parse(obj: Any) -> Command:
    fields = Fields(obj, "command", allowed=_FIELDS)
    if fields.text("format", max_len=32) != FORMAT:
        raise UnsupportedAlgorithm(f"command: format is not {FORMAT!r}")
    name = fields.text("command", max_len=16)
    try:
        action = Action(name)
    except ValueError:
        raise BadEncoding(f"command: unknown command {name!r}") from None
    command = Command(
        device_id=fields.text("device_id", max_len=64),
        site=fields.text("site", max_len=64),
        action=action,
        counter=fields.integer("counter", 1, 2**53 - 1),
        issued_at=fields.time("issued_at"),
        expires_at=fields.time("expires_at"),
    )
    lifetime = command.expires_at - command.issued_at
    if not timedelta(0) < lifetime <= MAX_VALIDITY:
        raise BadEncoding(f"command: validity must be positive and at most {MAX_VALIDITY}")
    return command


def open_command(
    data: bytes,
    *,
    trust: TrustPolicy,
    device_id: str,
    site: str,
    last_counter: int,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    skew: timedelta = DEFAULT_SKEW,
) -> Command:
    """Verify a command for this device; ``last_counter`` is the highest one already run."""
    now = require_aware(now)
    jws = parse_general(data, TYP, "command", limits.command_bytes, limits.signatures)
    signed_by = require_threshold(jws, trust.ops_keys, trust.threshold, "command")
    command = _parse(parse_json_object(jws.payload, "command payload", limits.command_bytes))
    if command.device_id != device_id or command.site != site:
        raise WrongDevice(
            f"command is for device {command.device_id!r} at site "
            f"{command.site!r}, not {device_id!r} at {site!r}"
        )
    if command.counter <= last_counter:
        raise RollbackRejected(
            f"command counter {command.counter} is not greater than {last_counter} (replayed)"
        )
    if now + skew < command.issued_at:
        raise NotYetValid(f"command issued_at {format_time(command.issued_at)} is in the future")
    if now >= command.expires_at:
        raise Expired(f"command expired at {format_time(command.expires_at)}")
    return Command(
        command.device_id,
        command.site,
        command.action,
        command.counter,
        command.issued_at,
        command.expires_at,
        signed_by,
    )
