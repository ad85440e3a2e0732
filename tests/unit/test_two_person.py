"""Two people, two workstations: a bundle or command is sealed with any number of signatures,
each other signer adds one (``lfr-watchlist sign``), and only a file at the threshold is sent."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.watchlist_cli import main as watchlist_main
from protocol import errors, hpke
from protocol.command import TYP as COMMAND_TYP
from protocol.command import (
    Action,
    Command,
    add_command_signature,
    open_command,
    read_command_draft,
    sign_command,
)
from protocol.encoding import b64url_decode, b64url_encode, canonical_json
from protocol.entries import encode_sealed_plaintext
from protocol.jws import parse_general, require_threshold, sign_general
from protocol.watchlist import TYP as WATCHLIST_TYP
from protocol.watchlist import WatchlistHeader, add_bundle_signature, read_draft
from provisioning.authority import Authority, load_ops_signer
from tests.conftest import EMBEDDER, NOW, TEST_THRESHOLD, Fleet, make_entries
from tests.unit.test_cli_foundation import enrolled, install, seal  # noqa: F401 - fixture
from tests.unit.test_watchlist_bundle import open_as_device


def _signed_in_order(fleet: Fleet, data: bytes, order: list[int]) -> bytes:
    for index in order:
        ((key, kid),) = fleet.signers(index)
        data = add_bundle_signature(data, key, kid)
    return data


@settings(max_examples=30, deadline=None)
@given(order=st.permutations([0, 1, 2]), flip=st.integers(min_value=0, max_value=10_000))
def test_signatures_added_in_any_order_verify_the_same(
    fleet: Fleet, order: list[int], flip: int
) -> None:
    draft = fleet.bundle(signers=())
    signed = _signed_in_order(fleet, draft, order)
    doc = json.loads(signed)
    # The payload is the draft's, byte for byte; each signature is over it alone.
    assert doc["payload"] == json.loads(draft)["payload"]
    watchlist = open_as_device(fleet, signed)
    assert watchlist.signed_by == frozenset(kid for _, kid in fleet.signers(0, 1, 2))
    assert len(watchlist.entries) == read_draft(signed).header.entry_count
    # Any change to the payload breaks every signature, not just some.
    payload = bytearray(b64url_decode(doc["payload"], "payload"))
    payload[flip % len(payload)] ^= 0x01
    doc["payload"] = b64url_encode(bytes(payload))
    tampered = json.dumps(doc).encode()
    with pytest.raises(errors.InsufficientSignatures, match="0 valid signature"):
        open_as_device(fleet, tampered)


def test_adding_a_signature_keeps_the_others_byte_for_byte(fleet: Fleet) -> None:
    one = fleet.bundle(signers=(2,))
    ((key, kid),) = fleet.signers(0)
    two = add_bundle_signature(one, key, kid)
    assert json.loads(two)["signatures"][0] == json.loads(one)["signatures"][0]
    assert read_draft(two).signatures == (fleet.signers(2)[0][1], kid)
    with pytest.raises(ValueError, match="already signed"):
        add_bundle_signature(two, key, kid)
    with pytest.raises(errors.InsufficientSignatures):
        open_as_device(fleet, one)  # 1 of 2: the device refuses the draft


def test_a_bundle_whose_entries_differ_from_its_signed_count_is_refused(fleet: Fleet) -> None:
    entries = make_entries()
    header = WatchlistHeader(
        "cam-01",
        "kx",
        "kx-lie",
        1,
        NOW,
        NOW + timedelta(hours=1),
        EMBEDDER,
        entries.dim,
        hpke.DEFAULT_SUITE,
        TEST_THRESHOLD,
        entry_count=len(entries.entries) + 1,
    )  # shown to the second signer as 4 entries; 3 sealed (the header is the HPKE info)
    sealed = hpke.seal(
        hpke.DEFAULT_SUITE,
        fleet.device_keys[hpke.DEFAULT_SUITE].public_key(),
        encode_sealed_plaintext(entries.entries, "float16"),
        header.hpke_info(),
    )
    payload = canonical_json({**header.to_json(), "ciphertext": b64url_encode(sealed)})
    forged = sign_general(payload, fleet.signers(0, 1), WATCHLIST_TYP)
    assert read_draft(forged).header.entry_count == 4
    with pytest.raises(errors.BadEncoding, match="3 entries; its signed header says 4"):
        open_as_device(fleet, forged)
    assert read_draft(fleet.bundle()).header.entry_count == 3


def test_a_command_signed_on_two_workstations_verifies(fleet: Fleet) -> None:
    command = Command("cam-01", "kx", Action.WIPE, 7, NOW, NOW.replace(minute=30))
    draft = sign_command(command, [], allow_unsigned=True)
    assert read_command_draft(draft).signatures == ()
    signed = draft
    for key, kid in fleet.signers(1, 0):
        signed = add_command_signature(signed, key, kid)
    opened = open_command(
        signed, trust=fleet.trust, device_id="cam-01", site="kx", last_counter=6, now=NOW
    )
    assert opened.action is Action.WIPE and len(opened.signed_by) == 2
    with pytest.raises(errors.InsufficientSignatures):
        open_command(
            add_command_signature(draft, *fleet.signers(0)[0]),
            trust=fleet.trust,
            device_id="cam-01",
            site="kx",
            last_counter=6,
            now=NOW,
        )


def _sign(path: str, key: str, *extra: str) -> int:
    return watchlist_main(
        ["sign", path, "--key", f"auth/{key}.key", "--audit", "audit.jsonl", *extra]
    )


def test_seal_unsigned_then_sign_on_each_workstation(
    enrolled: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert seal(1) == 0  # no --sign-with at all
    before = Path("wl1.jws").read_bytes()
    # Not confirmed (an operator answering no, or a script without --yes): nothing changes.
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    capsys.readouterr()
    assert _sign("wl1.jws", "ops-1") == 2
    shown = capsys.readouterr()
    for what in ("device:      cam-01 at site kx", "version:     1", "deployment:  kx-test"):
        assert what in shown.out
    assert "entries:     4" in shown.out and "threshold:   0.6000 (policy)" in shown.out
    assert "not confirmed" in shown.err
    assert Path("wl1.jws").read_bytes() == before
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert _sign("wl1.jws", "ops-1") == 0
    assert install(1) == 2  # 1 of 2
    assert _sign("wl1.jws", "ops-1", "--yes") == 2  # the same person twice
    assert "already signed" in capsys.readouterr().err
    assert _sign("wl1.jws", "ops-2", "--yes") == 0
    assert install(1) == 0
    lines = [json.loads(line) for line in Path("audit.jsonl").read_text().splitlines()]
    assert [(r["event"], r["what"], r["device_id"], r["number"]) for r in lines] == [
        ("signed", "watchlist", "cam-01", 1)
    ] * 2
    assert len({r["kid"] for r in lines}) == 2 and len({r["payload_sha256"] for r in lines}) == 1
    assert lines[0]["payload_sha256"] == read_draft(Path("wl1.jws").read_bytes()).payload_sha256


def test_a_command_file_short_of_the_threshold_is_not_sent(
    enrolled: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["--authority", "auth", "--audit", "audit.jsonl"]
    made = ["command", "pause", "--device", "cam-01", "--out", "pause.jws", *common]
    assert watchlist_main([*made, "--sign-with", "auth/ops-1.key"]) == 0
    assert "needs 1 more signature" in capsys.readouterr().out
    draft = read_command_draft(Path("pause.jws").read_bytes())
    assert draft.command.counter == 1 and draft.command.action is Action.PAUSE
    # No broker is needed to refuse it: the threshold is checked before connecting.
    send = ["send", "pause.jws", "--client-cert", "nowhere.crt", *common]
    assert watchlist_main(send) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not sent" in err and "2 required" in err
    assert _sign("pause.jws", "ops-3", "--yes") == 0
    signed = Path("pause.jws").read_bytes()
    policy = Authority.load(Path("auth")).policy
    jws = parse_general(signed, COMMAND_TYP, "command", 16384, 16)
    assert len(require_threshold(jws, policy.ops_keys, policy.threshold, "command")) == 2
    # The next command file gets the next counter from the ops state.
    resume = ["command", "resume", "--device", "cam-01", "--out", "resume.jws", *common]
    assert watchlist_main(resume) == 0
    assert read_command_draft(Path("resume.jws").read_bytes()).command.counter == 2
    audit = [json.loads(line) for line in Path("audit.jsonl").read_text().splitlines()]
    assert [(r["what"], r["detail"], r["number"]) for r in audit] == [
        ("command", "pause", 1),
        ("command", "pause", 1),
    ]


def test_an_expired_command_file_is_neither_signed_nor_sent(
    enrolled: Path,  # noqa: F811 - fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    stale = Command("cam-01", "kx", Action.WIPE, 1, issued, issued + timedelta(hours=1))
    Path("wipe.jws").write_bytes(
        sign_command(stale, [load_ops_signer(Path("auth/ops-1.key"))], allow_unsigned=True)
    )
    capsys.readouterr()
    assert _sign("wipe.jws", "ops-2", "--yes") == 2
    assert "expired at" in capsys.readouterr().err
    send = ["send", "wipe.jws", "--authority", "auth", "--client-cert", "nowhere.crt"]
    assert watchlist_main(send) == 2
    assert "not sent: it expired" in capsys.readouterr().err
