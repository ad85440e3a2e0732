"""The mutations: structure-aware changes to a JSON document, byte-level operations on an
input, deep nesting, and re-signing a payload as a JWS with valid, missing, duplicated or
wrong keys."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.keys import key_id
from tools.fuzz.jsontext import Pairs, b64, dumps, to_bytes
from tools.fuzz.values import Pool, interesting
from tools.fuzz.world import World

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

B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
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


def byte_op(  # noqa: PLR0911 - one return per operation
    data: bytes, rng: random.Random, corpus: list[bytes]
) -> tuple[bytes, str]:
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


def nest(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([100, 1000, 10_000, 100_000])
    if rng.random() < 0.5:
        return b"[" * depth + data + b"]" * depth
    at = rng.randrange(len(data) + 1)
    return data[:at] + b'{"a":' * depth + data[at:]


# -- JWS re-signing ----------------------------------------------------------------------


def pick_signers(  # noqa: PLR0911 - one return per combination
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


def general_jws(
    payload: bytes, typ: str, world: World, rng: random.Random, pools: dict[str, Pool]
) -> tuple[bytes, str]:
    """A general-serialization JWS over ``payload``, its headers and envelope perhaps hostile."""
    how, signers = pick_signers(world, rng)
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
