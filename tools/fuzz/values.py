"""Interesting values: what a mutated field is set to, typed by the field's name where the
campaign knows it (times around the device's clock, ids, counters around the anti-rollback
floors, numbers past float range, base64 of odd sizes), else generic hostile JSON."""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from typing import Any

import numpy as np

from protocol import hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import Action
from protocol.encoding import format_time
from protocol.event import TYP as EVENT_TYP
from protocol.keys import key_id
from protocol.watchlist import TYP as WATCHLIST_TYP
from tools.fuzz.jsontext import Raw, b64
from tools.fuzz.world import (
    DEVICE,
    DIM,
    INSTALLED_VERSION,
    LAST_COUNTER,
    NOW,
    OTHER_DEVICE,
    SITE,
    World,
)

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


def _b64_variants(rng: random.Random) -> str:  # noqa: PLR0911 - one return per variant
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


def value_pools(world: World) -> dict[str, Pool]:
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
        # The watchlist's signed threshold object (around the device's floor of 0.6).
        "value": [*numbers, 0.59, 0.6, 0.61, 0.0],
        "basis": ["calibrated", "policy", "", "Calibrated"],
        "fpir": [*numbers, 1e-3, 0.0, 1.0],
        "k": integers,
        "list_size": [*integers, 10_000_000, 10_000_001],
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
