"""A structure-aware mutation fuzzing campaign on the watchlist, event and command parsers.

Coverage-free, seeded and reproducible. Inputs come from valid seeds made with the campaign's
own keys (derived from the seed, so a replay has the same keys) and are then

- mutated as bytes: bit flips, interesting bytes, insertions of JSON/base64 tokens, deletions,
  duplications, truncations, base64url character swaps, splices of two inputs, deep nesting,
  and (rarely) padding past the size limit;
- or built as structures: the JSON of the payload, the protected header, the JWS envelope or
  the sealed watchlist entries is mutated (fields replaced by typed "interesting" values,
  removed, added, duplicated, retyped), then re-sealed with HPKE and re-signed with valid,
  missing, duplicated or wrong keys, so most inputs pass the signature check and reach the
  field validation, the addressee/version/time checks, decryption and the entries decoder.

Contract (docs/protocol.md): every input either parses or raises one subclass of
:class:`protocol.errors.RejectedInput` with a known ``reason`` and a message that does not
repeat what only the sealed entries hold (the agent logs it). Anything else, or more than
``hang_seconds`` (1 s) of CPU time on one input (10 times that on the wall clock), is a crash;
each crash is written to a JSON file (seed, target, parser, input, traceback) that
``--replay`` runs again with the same keys.

The input stream is a function of the seed, except the bytes of HPKE ciphertexts (and so of
the signatures over them): HPKE sealing is randomised (a fresh ephemeral key each time) and
``cryptography`` has no deterministic mode. The sequence of mutations and input lengths, and
hence the ``trace`` digest, are identical for one seed; reason counts may differ by a few
where a byte mutation happens to land on an unchanged value; a crash is reproduced from its
saved bytes.

CLI: ``python -m tests.reliability.fuzzing --target watchlist|event|command|all --inputs N
--seed S [--crash-dir DIR] [--replay FILE] [--engine mutation|atheris]``. ``--engine
atheris`` runs the same targets, contract and mutators coverage-guided by libFuzzer, when the
optional ``atheris`` package is installed.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import importlib
import importlib.util
import inspect
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from protocol import errors, hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import Action, Command, open_command, sign_command
from protocol.encoding import b64url_encode, canonical_json, format_time
from protocol.entries import Entries, Entry, encode_sealed_plaintext
from protocol.event import TYP as EVENT_TYP
from protocol.event import (
    MatchEvent,
    open_probe,
    parse_stored_event,
    seal_probe,
    sign_event,
    verify_event,
)
from protocol.keys import HpkePrivateKey, HybridPrivateKey, key_id
from protocol.limits import DEFAULT_LIMITS
from protocol.trust import TrustPolicy
from protocol.watchlist import _INFO_PREFIX as WATCHLIST_INFO_PREFIX
from protocol.watchlist import TYP as WATCHLIST_TYP
from protocol.watchlist import open_bundle, seal_bundle

NOW = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)
DEVICE, OTHER_DEVICE, SITE = "cam-01", "cam-02", "kx"
EMBEDDER = "e" * 64
DIM = 16
INSTALLED_VERSION = 1  # the device holds version 1: a bundle needs version >= 2
LAST_COUNTER = 4  # the device ran command 4: a command needs counter >= 5
TARGETS = ("watchlist", "event", "command")
B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)


# -- keys and seeds -----------------------------------------------------------------------


def _secret(seed: int, label: str, size: int = 32) -> bytes:
    return hashlib.sha512(f"lfr-fuzz/{seed}/{label}".encode()).digest()[:size]


def _ed25519(seed: int, label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_secret(seed, label))


@dataclass(frozen=True)
class World:
    """The campaign's own keys, all derived from the seed: 3 pinned ops keys (threshold 2),
    a rogue ops key nobody pinned, the device's HPKE keys (both suites), two devices'
    signing keys and the control room's adjudication key."""

    seed: int
    ops: tuple[ed25519.Ed25519PrivateKey, ...]
    rogue: ed25519.Ed25519PrivateKey
    trust: TrustPolicy
    device_hpke: dict[str, HpkePrivateKey]
    device_signing: ed25519.Ed25519PrivateKey
    other_signing: ed25519.Ed25519PrivateKey
    adjudication: x25519.X25519PrivateKey

    @classmethod
    def create(cls, seed: int) -> World:
        ops = tuple(_ed25519(seed, f"ops-{i}") for i in range(3))
        hybrid = HybridPrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(_secret(seed, "mlkem", 64)),
            x25519.X25519PrivateKey.from_private_bytes(_secret(seed, "hybrid-x25519")),
        )
        return cls(
            seed=seed,
            ops=ops,
            rogue=_ed25519(seed, "rogue"),
            trust=TrustPolicy.of([k.public_key() for k in ops], 2),
            device_hpke={
                hpke.X25519_CHACHA: x25519.X25519PrivateKey.from_private_bytes(
                    _secret(seed, "device-x25519")
                ),
                hpke.HYBRID_CHACHA: hybrid,
            },
            device_signing=_ed25519(seed, DEVICE),
            other_signing=_ed25519(seed, OTHER_DEVICE),
            adjudication=x25519.X25519PrivateKey.from_private_bytes(_secret(seed, "adjudication")),
        )

    def signer(self, key: ed25519.Ed25519PrivateKey) -> tuple[ed25519.Ed25519PrivateKey, str]:
        return key, key_id(key.public_key())

    @property
    def device_keys(self) -> dict[str, ed25519.Ed25519PublicKey]:
        return {
            DEVICE: self.device_signing.public_key(),
            OTHER_DEVICE: self.other_signing.public_key(),
        }


def _entries(seed: int, count: int = 3, per_entry: int = 2) -> Entries:
    rng = np.random.default_rng(seed)
    items = []
    for index in range(count):
        rows = rng.normal(size=(per_entry, DIM)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        items.append(Entry(f"WL-{index:04d}", "wanted", 0.55 if index == 0 else None, rows))
    return Entries(EMBEDDER, DIM, tuple(items))


def _watchlist_seeds(world: World) -> list[bytes]:
    entries = _entries(world.seed)
    out = []
    for version, suite, dtype in (
        (2, hpke.X25519_CHACHA, "float16"),
        (3, hpke.X25519_CHACHA, "int8"),
        (4, hpke.HYBRID_CHACHA, "float16"),
    ):
        out.append(
            seal_bundle(
                entries,
                device_id=DEVICE,
                site=SITE,
                deployment_id="kx-2026-11-28",
                version=version,
                issued_at=NOW - timedelta(minutes=1),
                expires_at=NOW + timedelta(hours=12),
                recipient=world.device_hpke[suite].public_key(),
                signers=[world.signer(world.ops[0]), world.signer(world.ops[version % 2 + 1])],
                suite=suite,
                dtype=dtype,
            )
        )
    return out


def _event_seeds(world: World) -> list[bytes]:
    out = []
    for number, (device, key) in enumerate(
        ((DEVICE, world.device_signing), (OTHER_DEVICE, world.other_signing))
    ):
        event_id = f"{number:08x}-1b4e-4a1c-9d2f-5e6f7a8b9c0d"
        event = MatchEvent(
            event_id=event_id,
            device_id=device,
            site=SITE,
            deployment_id="kx-2026-11-28",
            watchlist_version=2,
            subject_ref=f"WL-{number:04d}",
            category="wanted",
            score=0.71,
            threshold=0.6,
            margin=0.2,
            observed_at=NOW,
            track_id=17 + number,
            embedder_sha256=EMBEDDER,
            probe_suite=hpke.X25519_CHACHA,
            probe=seal_probe(
                JPEG, world.adjudication.public_key(), event_id=event_id, device_id=device
            ),
        )
        out.append(sign_event(event, key))
    return out


def _command_seeds(world: World) -> list[bytes]:
    out = []
    for counter, action in enumerate(Action, start=LAST_COUNTER + 1):
        command = Command(
            DEVICE, SITE, action, counter, NOW - timedelta(minutes=1), NOW + timedelta(minutes=9)
        )
        out.append(sign_command(command, [world.signer(world.ops[0]), world.signer(world.ops[2])]))
    return out


# -- JSON that canonical_json cannot write ------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``1e400``, ``NaN``, deep nesting, a lone surrogate)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """An object written with these members in this order, duplicates included."""

    items: tuple[tuple[str, Any], ...]


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        body = ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in sorted(value.items()))
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


def b64(data: bytes) -> str:
    return b64url_encode(data)


def unb64(text: str | bytes) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


# -- interesting values -------------------------------------------------------------------

Pool = list[Any]


def _times() -> Pool:
    return [
        format_time(NOW - timedelta(days=1)),
        format_time(NOW - timedelta(seconds=1)),
        format_time(NOW),
        format_time(NOW + timedelta(minutes=4)),
        format_time(NOW + timedelta(minutes=6)),
        format_time(NOW + timedelta(hours=2)),
        "0001-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2026-02-30T00:00:00Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T23:59:60Z",
        "2026-11-28T09:00:00.1234567Z",
        "2026-11-28T09:00:00+00:00",
        "2026-11-28t09:00:00z",
        "2026-11-28 09:00:00Z",
        "\u0662\u0660\u0662\u0666-11-28T09:00:00Z",  # Arabic-Indic digits
        "",
        "Z",
    ]


def _b64_variants(rng: random.Random) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        return b64(rng.randbytes(rng.choice([0, 1, 2, 3, 15, 16, 31, 32, 47, 48, 63, 64, 65])))
    if choice == 1:
        return b64(rng.randbytes(rng.randrange(0, 300)))
    if choice == 2:
        return "AB"  # non-canonical: unused bits set
    if choice == 3:
        return "AAA="  # padded
    if choice == 4:
        return "ab+/"  # standard alphabet
    if choice == 5:
        return "A"
    if choice == 6:
        return "QUJD\n"
    return b64(rng.randbytes(rng.randrange(1100, 1300)))  # hybrid-sized


def _embeddings(rng: random.Random) -> str:
    width = rng.choice([1, 2, 4])
    rows = rng.choice([0, 1, 2, 16, 17])
    size = rows * DIM * width + rng.choice([0, 0, 0, 1, -1, 2, DIM])
    size = max(0, size)
    kind = rng.randrange(6)
    if kind == 0:
        data = bytes(size)  # all zeros
    elif kind == 1:
        data = (b"\x00\x7e" * size)[:size]  # float16 NaN
    elif kind == 2:
        data = (b"\x00\x7c" * size)[:size]  # float16 +inf
    elif kind == 3:
        data = (b"\xff\x7b" * size)[:size]  # float16 65504
    elif kind == 4:
        data = (b"\x01\x00" * size)[:size]  # subnormals
    else:
        data = rng.randbytes(size)
    return b64(data)


def _scales(rng: random.Random) -> str:
    count = rng.choice([0, 1, 2, 3, 5, 7, 8, 9, 12])
    kind = rng.randrange(5)
    if kind == 0:
        return b64(rng.randbytes(count))
    values = {1: 0.0, 2: -1.0, 3: float("inf"), 4: 3.4e38}.get(kind, float("nan"))
    return b64(np.full(max(1, count // 4), values, dtype="<f4").tobytes()[:count])


def _deep(rng: random.Random) -> Raw:
    depth = rng.choice([50, 900, 1000, 5000, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return Raw(opener * depth + "1" + closer * depth)


GENERIC: Pool = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**53 - 1,
    2**53,
    2**63,
    -(2**63),
    10**400,
    -(10**400),
    Raw("1" * 4400),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-0"),
    Raw("1.0"),
    Raw("1E2"),
    Raw("0.1e-999"),
    0.5,
    -0.0,
    1e308,
    5e-324,
    "",
    "a",
    "A" * 200,
    "A" * 70_000,
    "\u0000",
    "\ud800",
    Raw('"\ud800"'),
    Raw('"\xe9"'),
    "\u00e9",
    "\u0662",
    [],
    {},
    [[[]]],
    [0] * 1000,
    {"a": 1},
    _deep,
    _b64_variants,
]


def _pools(world: World) -> dict[str, Pool]:
    kids = [key_id(k.public_key()) for k in (*world.ops, world.rogue)]
    times = _times()
    numbers: Pool = [0.5, -1.0, 1.0, 1.0001, -1.0001, 1e6, 1e6 + 1, -1e6 - 1, 5e-324, -0.0]
    numbers += [10**400, Raw("1e400"), Raw("-1e400"), True, "0.5", None, 2**53, Raw("1E-400")]
    integers: Pool = [0, 1, 2, 3, 4, 5, 6, 2**53 - 1, 2**53, -1, True, 1.0, "2", 10**400]
    integers += [Raw("1e400"), Raw("2.0"), Raw("1E1"), Raw("-0")]
    return {
        "issued_at": times,
        "expires_at": times,
        "observed_at": times,
        "device_id": [DEVICE, OTHER_DEVICE, "", "CAM-01", "cam-01\u0000", "x" * 65, "cam-99"],
        "site": [SITE, "ky", "", "KX", "x" * 65],
        "deployment_id": ["kx-2026-11-28", "", "d" * 128, "d" * 129, "\u00e9"],
        # Around the anti-rollback floors, so replays of older ones are frequent.
        "version": [*integers, INSTALLED_VERSION, INSTALLED_VERSION, INSTALLED_VERSION + 1],
        "counter": [*integers, LAST_COUNTER, LAST_COUNTER - 1, LAST_COUNTER + 1],
        "watchlist_version": integers,
        "track_id": integers,
        "dim": [1, 8, DIM - 1, DIM, DIM + 1, 2048, 2049, 0, -1, 10**400, Raw("16.0")],
        "embedder_sha256": ["e" * 64, "f" * 64, "E" * 64, "e" * 63, "e" * 65, "g" * 64],
        "hpke_suite": [*hpke.SUITES, "X25519-HKDF-SHA256-AES128GCM", "", "x" * 65],
        "probe_suite": [*hpke.SUITES, "DHKEM-P256", ""],
        "format": ["lfr-watchlist/1", "lfr-watchlist/2", "lfr-event/1", "lfr-command/1", ""],
        "command": [a.value for a in Action] + ["WIPE", "reboot", "", "pause "],
        "event_id": [
            "123e4567-e89b-42d3-a456-426614174000",
            "123E4567-E89B-42D3-A456-426614174000",
            "{123e4567-e89b-42d3-a456-426614174000}",
            "urn:uuid:123e4567-e89b-42d3-a456-426614174000",
            "123e4567e89b42d3a456426614174000",
            "123e4567-e89b-42d3-a456-42661417400",
            "\u0661" * 32,
        ],
        "subject_ref": ["WL-0001", "WL-0000", "-bad", "a b", "x" * 128, "x" * 129, "\u00e9"],
        "category": ["wanted", "", "x" * 64, "x" * 65],
        "score": numbers,
        "threshold": numbers,
        "margin": numbers,
        "dtype": ["float16", "int8", "float32", ""],
        "embeddings": [_embeddings, _embeddings, _b64_variants],
        "scales": [_scales, _scales, _b64_variants],
        "ciphertext": [_b64_variants],
        "probe": [_b64_variants],
        "payload": [_b64_variants, ""],
        "protected": [_b64_variants, b64(b"{}"), b64(b"[]"), b64(b"\xff")],
        "signature": [_b64_variants, b64(bytes(64)), b64(bytes(63))],
        "alg": ["EdDSA", "none", "HS256", "ES256", "eddsa", "Ed25519", ""],
        "typ": [WATCHLIST_TYP, EVENT_TYP, COMMAND_TYP, "JWT", ""],
        "kid": [*kids, DEVICE, OTHER_DEVICE, "cam-99", "", "x" * 200],
        "crit": [["b64"], []],
        "b64": [False],
        "jku": ["https://example.invalid/keys"],
        "header": [{"kid": kids[0]}],
    }


def _pick(pool: Pool, rng: random.Random) -> Any:
    value = rng.choice(pool)
    return value(rng) if callable(value) else copy.deepcopy(value)


def interesting(name: str | None, rng: random.Random, pools: dict[str, Pool]) -> Any:
    pool = pools.get(name or "")
    if pool is not None and rng.random() < 0.7:
        return _pick(pool, rng)
    return _pick(GENERIC, rng)


# -- JSON-level mutation ------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list) and len(value) <= 64:
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _name(path: Path_) -> str | None:
    return next((step for step in reversed(path) if isinstance(step, str)), None)


UNKNOWN_KEYS = ["x", "header", "crit", "ciphertext", "format", "", "\u00e9", "kid", "extra"]


def mutate_json(doc: Any, rng: random.Random, pools: dict[str, Pool], steps: int = 1) -> Any:
    """``doc`` (a deep copy) with ``steps`` structure-aware changes."""
    doc = copy.deepcopy(doc)
    for _ in range(steps):
        paths = list(_paths(doc))
        # The root is replaced rarely: a non-object stops parsing at once.
        path = rng.choice(paths[1:]) if len(paths) > 1 and rng.random() < 0.97 else ()
        target, op = _get(doc, path), rng.random()
        if isinstance(target, dict) and target and op < 0.35:
            keys = sorted(target)
            kind = rng.randrange(4)
            if kind == 0:
                del target[rng.choice(keys)]
            elif kind == 1:
                target[rng.choice(UNKNOWN_KEYS)] = interesting(None, rng, pools)
            elif kind == 2:
                key = rng.choice(keys)
                items = [*target.items(), (key, interesting(key, rng, pools))]
                doc = _set(doc, path, Pairs(tuple(items)))
            else:
                doc = _set(doc, path, {})
        elif isinstance(target, list) and target and op < 0.35:
            kind = rng.randrange(4)
            if kind == 0:
                del target[rng.randrange(len(target))]
            elif kind == 1:
                item = target[rng.randrange(len(target))]
                target.extend(copy.deepcopy(item) for _ in range(rng.choice([1, 2, 16, 17])))
            elif kind == 2:
                target.reverse()
            else:
                target.append(interesting(_name(path), rng, pools))
        else:
            doc = _set(doc, path, interesting(_name(path), rng, pools))
    return doc


# -- byte-level mutation ------------------------------------------------------------------

TOKENS = [
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b".",
    b"=",
    b"-",
    b"+",
    b"/",
    b"\x00",
    b"\n",
    b" ",
    b"\xc3\xa9",
    b"\xff",
    b"\xed\xa0\x80",
    b"null",
    b"true",
    b"1e400",
    b"-0",
    b"NaN",
    b"Infinity",
    b'"payload"',
    b'"signatures"',
    b'"protected"',
    b'"signature"',
    b'"ciphertext"',
    b'"alg":"none"',
    b"\\u0000",
    b"\\ud800",
    b"AAAA",
    b"A",
    b'"x":1,',
    b"99999999999999999999999",
]


def _byte_op(data: bytes, rng: random.Random, corpus: list[bytes]) -> tuple[bytes, str]:
    buf = bytearray(data)
    n = len(buf)
    op = rng.randrange(10)
    if n == 0:
        return bytes(rng.choice(TOKENS)), "insert"
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(buf), "bitflip"
    if op == 1:
        buf[rng.randrange(n)] = rng.choice(b'\x00\xff"{}[],:.=\\A_-\x7f\x80')
        return bytes(buf), "byte"
    if op == 2:
        at = rng.randrange(n + 1)
        token = rng.choice(TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 16))
        return bytes(buf[:at] + token + buf[at:]), "insert"
    if op == 3:
        at = rng.randrange(n)
        del buf[at : at + rng.randint(1, max(1, min(64, n - at)))]
        return bytes(buf), "delete"
    if op == 4:
        at, size = rng.randrange(n), rng.randint(1, 64)
        chunk = buf[at : at + size]
        to = rng.randrange(n + 1)
        return bytes(buf[:to] + chunk + buf[to:]), "duplicate"
    if op in (5, 6):
        return bytes(buf[: rng.randrange(n)]), "truncate"
    if op in (7, 8):
        positions = [rng.randrange(n) for _ in range(8)]
        hits = [p for p in positions if buf[p] in B64_ALPHABET]
        if hits:
            buf[hits[0]] = rng.choice(B64_ALPHABET)
            return bytes(buf), "b64-char"
        return bytes(buf[: rng.randrange(n)]), "truncate"
    other = rng.choice(corpus)
    return data[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1) :], "splice"


def _nest(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([100, 1000, 10_000, 100_000])
    if rng.random() < 0.5:
        return b"[" * depth + data + b"]" * depth
    at = rng.randrange(len(data) + 1)
    return data[:at] + b'{"a":' * depth + data[at:]


# -- targets ------------------------------------------------------------------------------

Check = Callable[[bytes], object]
Generator = Callable[[random.Random], bytes]


@dataclass
class Target:
    name: str
    limit: int  # the size limit of this format
    seeds: list[bytes]
    checks: list[tuple[str, Check]]  # parser entry points, each held to the contract
    generate: Generator  # structure-aware inputs behind valid signatures
    # Words no refusal message may contain: what only the sealed entries hold (a message
    # ends up in the device's log; the watchlist is secret).
    secrets: tuple[str, ...] = ()


def _signers(
    world: World, rng: random.Random
) -> tuple[str, list[tuple[ed25519.Ed25519PrivateKey, str]]]:
    """Who signs a watchlist or command: mostly a valid pair, else a wrong combination."""
    ops, rogue = world.ops, world.rogue
    roll = rng.random()
    if roll < 0.62:
        a, b = rng.sample(range(3), 2)
        return "valid", [world.signer(ops[a]), world.signer(ops[b])]
    if roll < 0.68:
        return "one", [world.signer(ops[rng.randrange(3)])]
    if roll < 0.74:
        return "wrong-key", [world.signer(ops[rng.randrange(3)]), world.signer(rogue)]
    if roll < 0.80:
        key = world.signer(ops[rng.randrange(3)])
        return "same-twice", [key, key]
    if roll < 0.85:
        return "rogue-under-pinned-kid", [
            world.signer(ops[0]),
            (rogue, key_id(ops[1].public_key())),
        ]
    if roll < 0.90:
        return "all-three", [world.signer(k) for k in ops]
    if roll < 0.94:
        return "seventeen", [world.signer(ops[i % 3]) for i in range(17)]
    return "rogue-only", [world.signer(rogue)]


def _general_jws(
    payload: bytes, typ: str, world: World, rng: random.Random, pools: dict[str, Pool]
) -> tuple[bytes, str]:
    """A general-serialization JWS over ``payload``, its headers and envelope perhaps hostile."""
    how, signers = _signers(world, rng)
    body = b64(payload)
    signatures: list[Any] = []
    for key, kid in signers:
        header: Any = {"alg": "EdDSA", "kid": kid, "typ": typ}
        if rng.random() < 0.08:
            header = mutate_json(header, rng, pools, rng.randint(1, 2))
            how += "+header"
        protected = b64(to_bytes(dumps(header)))
        signature = key.sign(f"{protected}.{body}".encode("ascii"))
        signatures.append({"protected": protected, "signature": b64(signature)})
    if rng.random() < 0.04:
        # Signatures over another payload (this one changed after signing).
        body = b64(payload + b" ")
        how += "+payload-changed"
    envelope: Any = {"payload": body, "signatures": signatures}
    if rng.random() < 0.08:
        envelope = mutate_json(envelope, rng, pools, rng.randint(1, 2))
        how += "+envelope"
    return to_bytes(dumps(envelope)), how


@dataclass
class _WatchlistParts:
    header: dict[str, Any]
    plaintext: dict[str, Any]


def _watchlist_target(world: World) -> Target:
    seeds = _watchlist_seeds(world)
    pools = _pools(world)
    entries = _entries(world.seed)
    parts = []
    for seed in seeds:
        payload = json.loads(unb64(json.loads(seed)["payload"]))
        del payload["ciphertext"]
        dtype = "int8" if payload["version"] == 3 else "float16"
        parts.append(
            _WatchlistParts(payload, json.loads(encode_sealed_plaintext(entries.entries, dtype)))
        )

    def seal(header_text: str, plaintext: bytes, rng: random.Random) -> bytes:
        try:
            header = json.loads(header_text)
            info = WATCHLIST_INFO_PREFIX + canonical_json(header)
            suite = header.get("hpke_suite")
        except (ValueError, AttributeError, RecursionError):
            info, suite = b"", None  # a header the parser refuses anyway
        if suite not in hpke.SUITES or rng.random() < 0.03:
            suite = rng.choice(hpke.SUITES)
        return hpke.seal(suite, world.device_hpke[suite].public_key(), plaintext, info)

    def generate(rng: random.Random) -> bytes:
        base = rng.choice(parts)
        header, plaintext = copy.deepcopy(base.header), to_bytes(dumps(base.plaintext))
        roll = rng.random()
        if roll < 0.45:
            header = mutate_json(header, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        elif roll < 0.75:
            mutated = mutate_json(base.plaintext, rng, pools, rng.choice([1, 1, 2, 3]))
            plaintext = to_bytes(dumps(mutated))
        elif roll < 0.85:
            plaintext, _ = _byte_op(plaintext, rng, [plaintext])
        header_text = dumps(header)
        ct_roll = rng.random()
        if ct_roll < 0.8:
            ciphertext = seal(header_text, plaintext, rng)
        elif ct_roll < 0.95:
            ciphertext = unb64(json.loads(unb64(json.loads(seeds[0])["payload"]))["ciphertext"])
        else:
            ciphertext = rng.randbytes(rng.choice([0, 16, 47, 48, 100, 1200]))
        if isinstance(header, dict):
            payload_text = dumps({**header, "ciphertext": b64(ciphertext)})
        else:
            payload_text = dumps(header)
        data, _ = _general_jws(to_bytes(payload_text), WATCHLIST_TYP, world, rng, pools)
        return data

    def check(data: bytes) -> object:
        return open_bundle(
            data,
            trust=world.trust,
            device_id=DEVICE,
            site=SITE,
            hpke_key=world.device_hpke,
            embedder_sha256=EMBEDDER,
            min_version=INSTALLED_VERSION + 1,
            now=NOW,
        )

    return Target(
        "watchlist",
        DEFAULT_LIMITS.bundle_bytes,
        seeds,
        [("open_bundle", check)],
        generate,
        secrets=tuple(entry.subject_ref for entry in entries.entries),
    )


def _command_target(world: World) -> Target:
    seeds = _command_seeds(world)
    pools = _pools(world)
    bases = [json.loads(unb64(json.loads(s)["payload"])) for s in seeds]

    def generate(rng: random.Random) -> bytes:
        payload: Any = rng.choice(bases)
        if rng.random() < 0.8:
            payload = mutate_json(payload, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        data, _ = _general_jws(to_bytes(dumps(payload)), COMMAND_TYP, world, rng, pools)
        return data

    def check(data: bytes) -> object:
        return open_command(
            data,
            trust=world.trust,
            device_id=DEVICE,
            site=SITE,
            last_counter=LAST_COUNTER,
            now=NOW,
        )

    return Target(
        "command", DEFAULT_LIMITS.command_bytes, seeds, [("open_command", check)], generate
    )


def _event_target(world: World) -> Target:
    seeds = _event_seeds(world)
    pools = _pools(world)
    bases = [json.loads(unb64(s.split(b".")[1])) for s in seeds]
    adjudication = world.adjudication.public_key()

    def generate(rng: random.Random) -> bytes:
        claims: Any = copy.deepcopy(rng.choice(bases))
        if rng.random() < 0.75:
            claims = mutate_json(claims, rng, pools, rng.choice([1, 1, 1, 2, 3]))
        if isinstance(claims, dict) and rng.random() < 0.2:
            event_id = claims.get("event_id") if rng.random() < 0.7 else str(claims)
            device = claims.get("device_id") if rng.random() < 0.8 else OTHER_DEVICE
            plaintext = JPEG if rng.random() < 0.5 else rng.randbytes(rng.randrange(300))
            probe = hpke.seal(
                hpke.X25519_CHACHA,
                adjudication,
                plaintext,
                b"lfr-probe/1 info\x00"
                + canonical_json({"event_id": str(event_id), "device_id": str(device)}),
            )
            claims["probe"] = b64(probe)
        signer_roll = rng.random()
        device = claims.get("device_id") if isinstance(claims, dict) else DEVICE
        if signer_roll < 0.75:
            key, kid = (
                (world.other_signing, OTHER_DEVICE)
                if device == OTHER_DEVICE
                else (
                    world.device_signing,
                    DEVICE,
                )
            )
        elif signer_roll < 0.83:
            key, kid = world.rogue, DEVICE  # forged: another key under the device's kid
        elif signer_roll < 0.90:
            key, kid = world.other_signing, OTHER_DEVICE  # a real device, claiming another
        elif signer_roll < 0.95:
            key, kid = world.rogue, "cam-99"  # not enrolled
        else:
            key, kid = world.device_signing, rng.choice(["", "x" * 200, DEVICE.upper()])
        header: Any = {"alg": "EdDSA", "kid": kid, "typ": EVENT_TYP}
        if rng.random() < 0.08:
            header = mutate_json(header, rng, pools, rng.randint(1, 2))
        protected, body = b64(to_bytes(dumps(header))), b64(to_bytes(dumps(claims)))
        signature = b64(key.sign(f"{protected}.{body}".encode("ascii")))
        token = f"{protected}.{body}.{signature}"
        shape = rng.random()
        if shape < 0.02:
            token += "." + signature
        elif shape < 0.04:
            token = f"{protected}.{body}"
        elif shape < 0.06:
            token = f" {token}\n"
        elif shape < 0.08:
            token = f"{protected}.{body}.{signature}=="
        return to_bytes(token)

    keys = world.device_keys
    adjudication_private = world.adjudication

    def verify(data: bytes) -> object:
        # The control room's path: verify (signature, then claims), later open the probe.
        return open_probe(verify_event(data, keys), adjudication_private)

    return Target(
        "event",
        DEFAULT_LIMITS.event_bytes,
        seeds,
        [("verify_event", verify), ("parse_stored_event", parse_stored_event)],
        generate,
    )


def make_target(name: str, world: World) -> Target:
    builders = {
        "watchlist": _watchlist_target,
        "event": _event_target,
        "command": _command_target,
    }
    return builders[name](world)


# -- the campaign -------------------------------------------------------------------------


class Leak(Exception):
    """A refusal message that repeats what the sealed entries hold."""


class Hang(BaseException):
    """One input ran past the hang limit (raised by SIGALRM inside the parser)."""


@dataclass
class Crash:
    target: str
    check: str
    index: int
    signature: str
    error: str
    file: Path | None


@dataclass
class Report:
    target: str
    seed: int
    inputs: int = 0
    accepted: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)
    mutators: Counter[str] = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)  # one refusal message per reason
    warnings: Counter[str] = field(default_factory=Counter)  # distinct warnings (not crashes)
    seconds: float = 0.0
    slowest: float = 0.0
    trace: str = ""

    @property
    def distinct_reasons(self) -> set[str]:
        return {reason for counter in self.reasons.values() for reason in counter}

    def lines(self) -> list[str]:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        out = [
            f"target {self.target}: {self.inputs} inputs, seed {self.seed}, "
            f"{self.seconds:.1f} s ({rate:.0f}/s), slowest input {self.slowest * 1000:.1f} ms CPU, "
            f"crashes {len(self.crashes)}, trace {self.trace[:16]}"
        ]
        for check, counter in self.reasons.items():
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
            out.append(
                f"  {check}: accepted {self.accepted.get(check, 0)}, "
                f"{len(counter)} distinct reasons: {reasons}"
            )
        out.append(
            "  inputs by mutator: " + ", ".join(f"{k}={v}" for k, v in self.mutators.items())
        )
        for crash in self.crashes[:20]:
            out.append(f"  CRASH #{crash.index} {crash.check}: {crash.signature} -> {crash.file}")
        return out


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


class _Timer:
    """Raises :class:`Hang` in the parser after ``seconds`` of CPU time (SIGPROF), or ten
    times that on the wall clock (SIGALRM, for a parser that would block). CPU time, so that
    a busy machine descheduling the campaign is not taken for a hang. Main thread only."""

    WALL_FACTOR = 10

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        self._previous: dict[int, Any] = {}

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        clock = "CPU" if signum == signal.SIGPROF else "wall-clock"
        limit = self.seconds * (1 if signum == signal.SIGPROF else self.WALL_FACTOR)
        raise Hang(f"more than {limit:g} s of {clock} time on one input")

    def __enter__(self) -> _Timer:
        if self.armed:
            for sig in (signal.SIGPROF, signal.SIGALRM):
                self._previous[sig] = signal.signal(sig, self._fire)
        return self

    def start(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_PROF, self.seconds)
            signal.setitimer(signal.ITIMER_REAL, self.seconds * self.WALL_FACTOR)

    def stop(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            self.stop()
            for sig, previous in self._previous.items():
                signal.signal(sig, previous)


def run_one(
    check: Check, data: bytes, timer: _Timer, secrets: tuple[str, ...] = ()
) -> tuple[str, BaseException | None, float]:
    """(outcome, exception, CPU seconds): outcome is 'ok', a reason code, or 'crash'."""
    started = time.process_time()
    outcome: str
    error: BaseException | None = None
    try:
        timer.start()
        try:
            check(data)
        finally:
            timer.stop()
        outcome = "ok"
    except errors.RejectedInput as exc:
        outcome, error = exc.reason, exc
        if exc.reason not in errors.REASONS or not str(exc):
            outcome = "crash"  # a refusal must have a known reason and say what was wrong
        leaked = [word for word in secrets if word in str(exc)]
        if leaked:
            outcome, error = "crash", Leak(f"{leaked[0]!r} in the message: {exc}")
            error.__cause__ = exc
            error.__traceback__ = exc.__traceback__
    except (Exception, Hang) as exc:  # anything else is what the campaign looks for
        outcome, error = "crash", exc
    elapsed = time.process_time() - started
    if outcome != "crash" and elapsed > timer.seconds:
        outcome, error = "crash", Hang(f"{elapsed:.2f} s of CPU time on one input")
    return outcome, error, elapsed


def _save_crash(
    crash_dir: Path, report: Report, check: str, index: int, data: bytes, exc: BaseException
) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"crash-{report.target}-{check}-seed{report.seed}-{index}.json"
    doc = {
        "target": report.target,
        "check": check,
        "seed": report.seed,
        "index": index,
        "signature": _signature(exc),
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "input_b64": base64.b64encode(data).decode("ascii"),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def next_input(target: Target, rng: random.Random, pool: list[bytes]) -> tuple[bytes, str]:
    roll = rng.random()
    if roll < 0.04:
        return rng.choice(target.seeds), "seed"
    if roll < 0.042:
        data = rng.choice(target.seeds)
        return data + b" " * (target.limit + 1 - len(data)), "oversize"
    if roll < 0.05:
        return _nest(rng.choice(pool), rng), "nest"
    if roll < 0.50:
        data, names = rng.choice(pool), []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            data, name = _byte_op(data, rng, pool)
            names.append(name)
        return data, "bytes:" + names[0]
    return target.generate(rng), "structure"


def run_campaign(
    name: str,
    inputs: int,
    seed: int,
    crash_dir: Path | None = None,
    hang_seconds: float = 1.0,
    target: Target | None = None,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run ``inputs`` inputs against target ``name``; never raises for a crash (see report)."""
    world = World.create(seed)
    target = target or make_target(name, world)
    rng = random.Random(f"lfr-fuzz/{seed}/{name}")
    report = Report(name, seed)
    report.reasons = {check: Counter() for check, _ in target.checks}
    report.accepted = {check: 0 for check, _ in target.checks}
    pool = list(target.seeds)  # seeds, then the latest structured inputs (bounded)
    trace = hashlib.sha256()
    seen_crashes: Counter[str] = Counter()
    started = time.perf_counter()
    with _Timer(hang_seconds) as timer, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each distinct warning once
        for index in range(inputs):
            data, mutator = next_input(target, rng, pool)
            report.mutators[mutator.split(":")[0]] += 1
            trace.update(f"{mutator}:{len(data)};".encode())
            if mutator == "structure":
                if len(pool) < len(target.seeds) + 256:
                    pool.append(data)
                else:
                    pool[len(target.seeds) + index % 256] = data
            for check_name, check in target.checks:
                outcome, exc, elapsed = run_one(check, data, timer, target.secrets)
                report.slowest = max(report.slowest, elapsed)
                if outcome == "ok":
                    report.accepted[check_name] += 1
                elif outcome != "crash":
                    report.reasons[check_name][outcome] += 1
                    report.samples.setdefault(outcome, str(exc))
                else:
                    assert exc is not None
                    signature = _signature(exc)
                    seen_crashes[signature] += 1
                    path = None
                    if crash_dir is not None and seen_crashes[signature] <= 3:
                        path = _save_crash(crash_dir, report, check_name, index, data, exc)
                    report.crashes.append(
                        Crash(name, check_name, index, signature, f"{exc!r}"[:300], path)
                    )
            report.inputs = index + 1
            if progress is not None and (index + 1) % 10_000 == 0:
                report.seconds = time.perf_counter() - started
                progress(report)
    report.seconds = time.perf_counter() - started
    report.trace = trace.hexdigest()
    for warning in caught:
        where = f"{Path(warning.filename).name}:{warning.lineno}"
        report.warnings[f"{warning.category.__name__} at {where}: {warning.message}"] += 1
    return report


def replay(path: Path) -> tuple[str, BaseException | None]:
    """Run a saved crash input again, with the keys of its seed."""
    doc = json.loads(path.read_text())
    world = World.create(int(doc["seed"]))
    target = make_target(str(doc["target"]), world)
    data = base64.b64decode(doc["input_b64"])
    check = dict(target.checks)[str(doc["check"])]
    with _Timer(1.0) as timer:
        outcome, exc, _ = run_one(check, data, timer, target.secrets)
    return outcome, exc


def _instrument_protocol(atheris: Any) -> None:
    """Coverage feedback from the parsers only (``instrument_all`` would take a minute over
    numpy and cryptography): every function and method of the ``protocol`` package."""
    for module_name, module in list(sys.modules.items()):
        if module_name != "protocol" and not module_name.startswith("protocol."):
            continue
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != module_name:
                continue
            members = vars(obj).values() if isinstance(obj, type) else [obj]
            for member in members:
                function = getattr(member, "__func__", None) or getattr(member, "fget", member)
                if inspect.isfunction(function):
                    atheris.instrument_func(function)


def run_atheris(name: str, inputs: int, seed: int, crash_dir: Path) -> None:
    """The same target, contract and mutators, coverage-guided by libFuzzer through atheris
    (an optional dev dependency: ``pip install atheris``; x86_64 wheels for CPython 3.11).

    libFuzzer picks the input to mutate by the coverage it found; the mutator is this
    module's (structured inputs behind valid signatures, byte operations) or libFuzzer's own.
    A contract violation propagates, so libFuzzer stops and writes the input into
    ``crash_dir`` (``-timeout=1`` makes a hang a crash too). Does not return: libFuzzer exits
    the process when it is done.
    """
    atheris: Any = importlib.import_module("atheris")
    world = World.create(seed)
    target = make_target(name, world)
    report = Report(name, seed)
    report.reasons = {check: Counter() for check, _ in target.checks}
    report.accepted = {check: 0 for check, _ in target.checks}
    pool = list(target.seeds)
    started = time.perf_counter()

    def one_input(data: bytes) -> None:
        nonlocal started
        if not report.inputs:
            started = time.perf_counter()
        report.inputs += 1
        for check_name, check in target.checks:
            try:
                check(data)
                report.accepted[check_name] += 1
            except errors.RejectedInput as exc:
                if exc.reason not in errors.REASONS or not str(exc):
                    raise AssertionError(f"refusal without a known reason: {exc!r}") from exc
                if any(word in str(exc) for word in target.secrets):
                    raise Leak(f"sealed content in the message: {exc}") from exc
                report.reasons[check_name][exc.reason] += 1
        if report.inputs % 10_000 == 0 or report.inputs == inputs:
            report.seconds = time.perf_counter() - started
            rate = report.inputs / report.seconds if report.seconds else 0.0
            lines = [
                f"target {name} (atheris): {report.inputs} inputs, seed {seed}, "
                f"{report.seconds:.1f} s ({rate:.0f}/s), no crash so far",
                *report.lines()[1:],
            ]
            print("\n".join(line for line in lines if "by mutator" not in line), flush=True)

    def mutate(data: bytes, max_size: int, mutation_seed: int) -> bytes:
        rng = random.Random(mutation_seed)
        roll = rng.random()
        if roll < 0.45:
            out = target.generate(rng)
            pool[len(target.seeds) + rng.randrange(256) :] = [out]
        elif roll < 0.75:
            out = bytes(atheris.Mutate(data, max_size))
        elif roll < 0.78:
            out = _nest(data, rng)
        else:
            out = _byte_op(data, rng, pool)[0]
        return out[:max_size]

    corpus = Path(tempfile.mkdtemp(prefix=f"lfr-fuzz-{name}-"))
    for index, seed_input in enumerate(target.seeds):
        (corpus / f"seed-{index}").write_bytes(seed_input)
    crash_dir.mkdir(parents=True, exist_ok=True)
    print(f"atheris {name}: seed {seed}, corpus {corpus}, crashes into {crash_dir}/", flush=True)
    _instrument_protocol(atheris)
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={inputs}",
            f"-seed={seed % 2**32 or 1}",
            "-timeout=1",
            "-max_len=1048576",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
            f"-artifact_prefix={crash_dir}/",
            str(corpus),
        ],
        one_input,
        custom_mutator=mutate,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.fuzzing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--hang-seconds", type=float, default=1.0)
    parser.add_argument("--replay", type=Path, metavar="CRASH_JSON")
    parser.add_argument(
        "--engine",
        choices=["mutation", "atheris"],
        default="mutation",
        help="atheris: coverage-guided by libFuzzer (optional: pip install atheris)",
    )
    args = parser.parse_args(argv)
    if args.replay is not None:
        outcome, exc = replay(args.replay)
        print(f"replay {args.replay}: {outcome}" + (f" ({exc!r})" if exc else ""))
        if outcome == "crash" and exc is not None:
            traceback.print_exception(exc)
        return 1 if outcome == "crash" else 0
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzzing seed {seed} (replay a crash: --replay FILE)", flush=True)
    targets = TARGETS if args.target == "all" else (args.target,)
    if args.engine == "atheris":
        if importlib.util.find_spec("atheris") is None:
            print("atheris is not installed (pip install atheris); use --engine mutation")
            return 2
        if len(targets) == 1:
            run_atheris(targets[0], args.inputs, seed, args.crash_dir)
        failed = 0
        for name in targets:  # libFuzzer exits its process: one process per target
            command = [sys.executable, "-m", "tests.reliability.fuzzing", "--engine", "atheris"]
            command += ["--target", name, "--inputs", str(args.inputs), "--seed", str(seed)]
            command += ["--crash-dir", str(args.crash_dir)]
            failed += subprocess.run(command, check=False).returncode != 0
        return 1 if failed else 0
    crashes = 0
    for name in targets:
        report = run_campaign(
            name,
            args.inputs,
            seed,
            args.crash_dir,
            args.hang_seconds,
            progress=lambda r: print(
                f"  {r.target}: {r.inputs} inputs, {r.seconds:.0f} s, crashes {len(r.crashes)}",
                flush=True,
            ),
        )
        print("\n".join(report.lines()), flush=True)
        crashes += len(report.crashes)
    print(f"total crashes: {crashes}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
