"""Watchlist bundles: round trips and every rejection DESIGN.md lists."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from protocol import errors, hpke
from protocol.encoding import b64url_decode, b64url_encode, canonical_json
from protocol.entries import Entries, encode_sealed_plaintext
from protocol.jws import sign_general
from protocol.limits import Limits
from protocol.watchlist import TYP, Watchlist, open_bundle
from tests.conftest import EMBEDDER, NOW, Fleet, make_entries


def open_as_device(
    fleet: Fleet,
    data: bytes,
    *,
    suite: str = hpke.DEFAULT_SUITE,
    min_version: int = 1,
    device_id: str = "cam-01",
    site: str = "kx",
    embedder: str = EMBEDDER,
    now: datetime = NOW,
    limits: Limits | None = None,
    min_threshold: float | None = None,
) -> Watchlist:
    return open_bundle(
        data,
        trust=fleet.trust,
        device_id=device_id,
        site=site,
        hpke_key=fleet.device_keys[suite],
        embedder_sha256=embedder,
        min_version=min_version,
        now=now,
        limits=limits or Limits(),
        min_threshold=min_threshold,
    )


@pytest.mark.parametrize("suite", hpke.SUITES)
@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_round_trip_keeps_entries(fleet: Fleet, suite: str, dtype: str) -> None:
    entries = make_entries(count=4, dim=128)
    watchlist = open_as_device(
        fleet, fleet.bundle(suite=suite, dtype=dtype, entries=entries), suite=suite
    )
    assert watchlist.header.version == 1
    assert watchlist.header.hpke_suite == suite
    assert watchlist.signed_by == {kid for _, kid in fleet.signers(0, 1)}
    assert [e.subject_ref for e in watchlist.entries] == [e.subject_ref for e in entries.entries]
    assert watchlist.entries[0].threshold == 0.55
    assert watchlist.entries[1].threshold is None
    for got, want in zip(watchlist.entries, entries.entries, strict=True):
        assert got.embeddings.shape == want.embeddings.shape
        cosines = np.sum(got.embeddings * want.embeddings, axis=1)
        assert np.all(cosines > (0.9999 if dtype == "float16" else 0.999))


def test_any_two_of_three_ops_keys_suffice(fleet: Fleet) -> None:
    for pair in ((0, 1), (0, 2), (1, 2)):
        assert open_as_device(fleet, fleet.bundle(signers=pair)).header.version == 1


def test_one_signature_is_too_few(fleet: Fleet) -> None:
    with pytest.raises(errors.InsufficientSignatures, match="1 valid signature"):
        open_as_device(fleet, fleet.bundle(signers=(0,)))


def test_same_key_signing_twice_counts_once(fleet: Fleet) -> None:
    with pytest.raises(errors.InsufficientSignatures, match="1 valid signature"):
        open_as_device(fleet, fleet.bundle(signers=(2, 2)))


def test_signature_by_unpinned_key_does_not_count(fleet: Fleet) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from protocol.keys import key_id
    from protocol.watchlist import POLICY, MatchThreshold, seal_bundle

    rogue = ed25519.Ed25519PrivateKey.generate()
    data = seal_bundle(
        make_entries(),
        device_id="cam-01",
        site="kx",
        deployment_id="d",
        version=1,
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        recipient=fleet.device_keys[hpke.DEFAULT_SUITE].public_key(),
        signers=[fleet.signers(0)[0], (rogue, key_id(rogue.public_key()))],
        threshold=MatchThreshold(0.6, POLICY),
    )
    with pytest.raises(errors.InsufficientSignatures, match="1 by unknown keys"):
        open_as_device(fleet, data)


def test_signature_claiming_a_pinned_kid_but_made_by_another_key(fleet: Fleet) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from protocol.keys import key_id

    rogue = ed25519.Ed25519PrivateKey.generate()
    pinned_kid = key_id(fleet.ops[1].public_key())
    good = json.loads(fleet.bundle())
    forged = json.loads(
        sign_general(
            b64url_decode(good["payload"], "p"), [fleet.signers(0)[0], (rogue, pinned_kid)], TYP
        )
    )
    with pytest.raises(errors.InsufficientSignatures, match="1 invalid"):
        open_as_device(fleet, canonical_json(forged))


def test_bundle_for_another_device_is_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.WrongDevice, match="cam-02"):
        open_as_device(fleet, fleet.bundle(device_id="cam-02"))


def test_bundle_for_another_site_is_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.WrongDevice):
        open_as_device(fleet, fleet.bundle(site="euston"))


def test_replayed_older_or_same_version_is_refused(fleet: Fleet) -> None:
    for version in (3, 4):
        with pytest.raises(errors.RollbackRejected, match="installed version 4"):
            open_as_device(fleet, fleet.bundle(version=version), min_version=5)
    assert open_as_device(fleet, fleet.bundle(version=5), min_version=5).header.version == 5


def test_expired_bundle_is_refused(fleet: Fleet) -> None:
    data = fleet.bundle(issued=NOW - timedelta(hours=3), lifetime=timedelta(hours=2))
    with pytest.raises(errors.Expired):
        open_as_device(fleet, data)
    # Exactly at expires_at it is already expired.
    data = fleet.bundle(issued=NOW - timedelta(hours=1), lifetime=timedelta(hours=1))
    with pytest.raises(errors.Expired):
        open_as_device(fleet, data)


def test_bundle_from_the_future_is_refused_beyond_skew(fleet: Fleet) -> None:
    with pytest.raises(errors.NotYetValid):
        open_as_device(fleet, fleet.bundle(issued=NOW + timedelta(minutes=10)))
    # Within the 5-minute skew it is accepted (clocks on a concourse drift).
    assert open_as_device(fleet, fleet.bundle(issued=NOW + timedelta(minutes=4)))


def test_embedder_mismatch_is_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.EmbedderMismatch):
        open_as_device(fleet, fleet.bundle(), embedder="f" * 64)


def test_sealed_to_another_key_fails_decryption(fleet: Fleet) -> None:
    from protocol.watchlist import POLICY, MatchThreshold, seal_bundle

    other = hpke.generate_key(hpke.DEFAULT_SUITE)
    data = seal_bundle(
        make_entries(),
        device_id="cam-01",
        site="kx",
        deployment_id="d",
        version=1,
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        recipient=other.public_key(),
        signers=fleet.signers(0, 1),
        threshold=MatchThreshold(0.6, POLICY),
    )
    with pytest.raises(errors.DecryptionFailed):
        open_as_device(fleet, data)


def test_hybrid_bundle_needs_the_hybrid_key(fleet: Fleet) -> None:
    data = fleet.bundle(suite=hpke.HYBRID_CHACHA)
    with pytest.raises(errors.DecryptionFailed):
        open_bundle(
            data,
            trust=fleet.trust,
            device_id="cam-01",
            site="kx",
            hpke_key=fleet.device_keys[hpke.X25519_CHACHA],
            embedder_sha256=EMBEDDER,
            min_version=1,
            now=NOW,
        )


def _resign(fleet: Fleet, data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """Edit the payload and sign it properly again (what a malicious *ops* member could do)."""
    payload = json.loads(b64url_decode(json.loads(data)["payload"], "payload"))
    edit(payload)
    return sign_general(canonical_json(payload), fleet.signers(0, 1), TYP)


def test_header_moved_under_another_ciphertext_fails_decryption(fleet: Fleet) -> None:
    # The ciphertext is bound to its header by HPKE info: re-signing a changed expiry is not
    # enough to reuse it.
    def extend(p: dict[str, Any]) -> None:
        p["expires_at"] = "2030-01-01T00:00:00Z"

    with pytest.raises(errors.DecryptionFailed):
        open_as_device(fleet, _resign(fleet, fleet.bundle(), extend))


def _sealed_with(fleet: Fleet, plaintext: bytes, dim: int = 64) -> bytes:
    from protocol import watchlist as wl

    header = wl.WatchlistHeader(
        "cam-01",
        "kx",
        "d",
        1,
        NOW,
        NOW + timedelta(hours=1),
        EMBEDDER,
        dim,
        hpke.DEFAULT_SUITE,
        wl.MatchThreshold(0.6, wl.POLICY),
    )
    sealed = hpke.seal(
        hpke.DEFAULT_SUITE,
        fleet.device_keys[hpke.DEFAULT_SUITE].public_key(),
        plaintext,
        header.hpke_info(),
    )
    payload = {**header.to_json(), "ciphertext": b64url_encode(sealed)}
    return sign_general(canonical_json(payload), fleet.signers(0, 1), TYP)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b'{"dtype":"float16","entries":[]}',
        b'{"dtype":"float64","entries":[{"subject_ref":"a","category":"c","threshold":null,'
        b'"embeddings":"AAAA"}]}',
        b'{"dtype":"float16","entries":[{"subject_ref":"a b","category":"c","threshold":null,'
        b'"embeddings":"AAAA"}]}',
        b'{"dtype":"float16","entries":[{"subject_ref":"a","category":"c","threshold":null,'
        b'"embeddings":"AAAA"}]}',
    ],
)
def test_malformed_entries_are_refused(fleet: Fleet, plaintext: bytes) -> None:
    with pytest.raises(errors.MalformedEntries):
        open_as_device(fleet, _sealed_with(fleet, plaintext))


def test_nan_or_zero_embeddings_are_malformed(fleet: Fleet) -> None:
    entries = make_entries(count=1, dim=64)
    bad = entries.entries[0].embeddings.copy()
    bad[0, :] = 0.0
    zero = Entries(EMBEDDER, 64, (type(entries.entries[0])("WL-1", "wanted", None, bad),))
    with pytest.raises(errors.MalformedEntries, match="all zeros"):
        open_as_device(fleet, _sealed_with(fleet, encode_sealed_plaintext(zero.entries, "float16")))
    bad[0, :] = np.nan
    with pytest.raises(errors.MalformedEntries, match="NaN"):
        open_as_device(fleet, _sealed_with(fleet, encode_sealed_plaintext(zero.entries, "float16")))


def test_duplicate_subject_refs_are_malformed(fleet: Fleet) -> None:
    entries = make_entries(count=2)
    twice = (entries.entries[0], entries.entries[0])
    with pytest.raises(errors.MalformedEntries, match="twice"):
        open_as_device(fleet, _sealed_with(fleet, encode_sealed_plaintext(twice, "int8")))


def test_oversize_bundle_is_refused_before_parsing(fleet: Fleet) -> None:
    data = fleet.bundle()
    with pytest.raises(errors.Oversize):
        open_as_device(fleet, data, limits=Limits(bundle_bytes=len(data) - 1))
    # Not even JSON: the size check comes first.
    with pytest.raises(errors.Oversize):
        open_as_device(fleet, b"{" * 200, limits=Limits(bundle_bytes=100))


def test_too_many_entries_is_oversize(fleet: Fleet) -> None:
    with pytest.raises(errors.Oversize):
        open_as_device(fleet, fleet.bundle(entries=make_entries(count=5)), limits=Limits(entries=4))


def test_bad_json_is_refused(fleet: Fleet) -> None:
    for data in (
        b"",
        b"[]",
        b"{}",
        b"\xff\xfe",
        b'{"payload":"e30","signatures":[]}',
        b"[" * 100_000,
        b'{"payload":"a","payload":"b","signatures":[]}',
    ):
        with pytest.raises(errors.BadEncoding):
            open_as_device(fleet, data)


def test_flipped_byte_anywhere_is_refused(fleet: Fleet) -> None:
    data = fleet.bundle(entries=make_entries(count=1, dim=16, per_entry=1))
    reasons: set[str] = set()
    for index in range(len(data)):
        for flip in (0x01, 0x20):
            mutated = bytearray(data)
            mutated[index] ^= flip
            with pytest.raises(errors.RejectedInput) as caught:
                open_as_device(fleet, bytes(mutated))
            reasons.add(caught.value.reason)
    assert {"bad_json", "too_few_signatures"} <= reasons


def test_truncated_bundle_is_refused(fleet: Fleet) -> None:
    data = fleet.bundle(entries=make_entries(count=1, dim=16, per_entry=1))
    for length in range(0, len(data), 7):
        with pytest.raises(errors.RejectedInput):
            open_as_device(fleet, data[:length])
