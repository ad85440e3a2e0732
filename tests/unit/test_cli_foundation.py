"""The foundation commands end to end, in-process, on real files in a temp directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main as agent_main
from central.watchlist_cli import main as watchlist_main
from protocol.entries import dump_entries_file
from provisioning.cli import main as provision_main
from tests.conftest import EMBEDDER, make_entries

BIN = Path(sys.executable).parent


@pytest.fixture
def enrolled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Authority (3 ops keys, threshold 2) + one device, enrolled through the real CLI."""
    monkeypatch.chdir(tmp_path)
    assert (
        provision_main(["init-authority", "--out", "auth", "--ops-keys", "3", "--threshold", "2"])
        == 0
    )
    assert provision_main(["device-init", "--id", "cam-01", "--site", "kx", "--state", "dev"]) == 0
    assert (
        provision_main(["approve", "dev/request.json", "--authority", "auth", "--out", "bundle"])
        == 0
    )
    assert provision_main(["device-install", "bundle", "--state", "dev"]) == 0
    Path("entries.json").write_bytes(dump_entries_file(make_entries(count=4, dim=32)))
    return tmp_path


def seal(version: int, *keys: str, extra: tuple[str, ...] = ()) -> int:
    args = [
        "seal",
        "entries.json",
        "--device",
        "cam-01",
        "--registry",
        "auth/registry.json",
        "--authority",
        "auth",
        "--version",
        str(version),
        "--expires",
        "12h",
        "--deployment",
        "kx-test",
        "--out",
        f"wl{version}.jws",
        "--threshold",
        "0.6",
        *extra,
    ]
    for key in keys:
        args += ["--sign-with", f"auth/{key}.key"]
    return watchlist_main(args)


def install(version: int, embedder: str = EMBEDDER) -> int:
    return agent_main(
        ["watchlist", "install", f"wl{version}.jws", "--state", "dev", "--embedder", embedder]
    )


def show(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert agent_main(["watchlist", "show", "--state", "dev", "--embedder", EMBEDDER]) == 0
    return capsys.readouterr().out


def test_private_keys_are_0600_and_never_in_requests(enrolled: Path) -> None:
    for key in [*Path("auth").glob("*.key"), *Path("dev/keys").glob("*.key")]:
        assert os.stat(key).st_mode & 0o777 == 0o600, key
    request = Path("dev/request.json").read_text()
    assert "PRIVATE" not in request
    registry = json.loads(Path("auth/registry.json").read_text())
    assert [d["device_id"] for d in registry["devices"]] == ["cam-01"]


def test_seal_install_show_and_every_refusal_keeps_the_previous(
    enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seal(1, "ops-1", "ops-2") == 0
    assert install(1) == 0
    assert "version:     1" in show(capsys)
    assert "entries:     4" in show(capsys)
    assert "threshold:   0.6000 (policy)" in show(capsys)
    assert "WL-0000" not in show(capsys)  # never entries

    assert install(1) == 2  # replay
    assert "rejected: watchlist version 1 is not greater" in capsys.readouterr().err
    assert seal(2, "ops-2", "ops-3", extra=("--suite", "mlkem768-x25519")) == 0
    assert install(2, embedder="0" * 64) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[embedder_mismatch]" in err
    assert "version:     1" in show(capsys)

    data = bytearray(Path("wl2.jws").read_bytes())
    data[len(data) // 2] ^= 1
    Path("wl2.jws").write_bytes(bytes(data))
    assert install(2) == 2
    assert "version:     1" in show(capsys)


def test_sealing_with_too_few_keys_makes_a_draft_and_foreign_keys_are_refused(
    enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Too few signatures: a draft for others to sign (lfr-watchlist sign), which the device
    # refuses until it has them.
    assert seal(1, "ops-1") == 0
    assert "needs 1 more signature" in capsys.readouterr().out
    assert install(1) == 2
    assert "too_few_signatures" in capsys.readouterr().err
    assert seal(2, "ops-1", "ops-1") == 0
    assert install(2) == 2
    shutil.copy("dev/keys/signing.key", "auth/rogue.key")
    assert seal(1, "ops-1", "rogue") == 2
    assert "not an ops key" in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(
    enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    cases = [
        (provision_main, ["device-init", "--id", "Cam 01", "--site", "kx", "--state", "x"]),
        (provision_main, ["device-init", "--id", "cam-01", "--site", "euston", "--state", "dev"]),
        (provision_main, ["init-authority", "--out", "auth"]),
        (provision_main, ["approve", "nope.json", "--authority", "auth", "--out", "b"]),
        (provision_main, ["approve", "entries.json", "--authority", "auth", "--out", "b"]),
        (
            watchlist_main,
            [
                "seal",
                "dev/request.json",
                "--device",
                "cam-01",
                "--registry",
                "auth/registry.json",
                "--authority",
                "auth",
                "--sign-with",
                "auth/ops-1.key",
                "--sign-with",
                "auth/ops-2.key",
                "--version",
                "1",
                "--expires",
                "1h",
                "--deployment",
                "d",
                "--out",
                "x.jws",
            ],
        ),
        (
            watchlist_main,
            [
                "seal",
                "entries.json",
                "--device",
                "cam-09",
                "--registry",
                "auth/registry.json",
                "--authority",
                "auth",
                "--sign-with",
                "auth/ops-1.key",
                "--version",
                "1",
                "--expires",
                "1h",
                "--deployment",
                "d",
                "--out",
                "x.jws",
            ],
        ),
        (
            agent_main,
            ["watchlist", "install", "entries.json", "--state", "dev", "--embedder", EMBEDDER],
        ),
    ]
    for main, argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err
    assert seal(1, "ops-1", "ops-2") == 0
    os.chmod("dev/keys/signing.key", 0o644)
    assert install(1) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_tampered_request_is_refused(enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = json.loads(Path("dev/request.json").read_text())
    request["site"] = "euston"
    Path("forged.json").write_text(json.dumps(request))
    assert provision_main(["approve", "forged.json", "--authority", "auth", "--out", "b2"]) == 2
    assert "not signed by the device key" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["lfr-agent", "lfr-provision", "lfr-watchlist", "lfr-alerts"])
def test_console_scripts_have_help(script: str) -> None:
    out = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0
    assert "usage:" in out.stdout
    bad = subprocess.run(
        [str(BIN / script), "--no-such-flag"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2


def test_alerts_verify_opens_the_probe(enrolled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from central.alerts_cli import main as alerts_main
    from protocol import hpke
    from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
    from protocol.keys import load_hpke_public, load_signing_private
    from tests.conftest import NOW

    jpeg = b"\xff\xd8 a face \xff\xd9"
    event_id = new_event_id()
    adjudication = load_hpke_public(Path("auth/adjudication.pub").read_bytes())
    event = MatchEvent(
        event_id=event_id,
        device_id="cam-01",
        site="kx",
        deployment_id="kx-test",
        watchlist_version=1,
        subject_ref="WL-0001",
        category="wanted",
        score=0.7,
        threshold=0.6,
        margin=0.2,
        observed_at=NOW,
        track_id=1,
        embedder_sha256=EMBEDDER,
        probe_suite=hpke.DEFAULT_SUITE,
        probe=seal_probe(jpeg, adjudication, event_id=event_id, device_id="cam-01"),
    )
    Path("event.jws").write_bytes(
        sign_event(event, load_signing_private(Path("dev/keys/signing.key").read_bytes()))
    )
    assert (
        alerts_main(
            [
                "verify",
                "event.jws",
                "--registry",
                "auth/registry.json",
                "--adjudication-key",
                "auth/adjudication.key",
                "--probe-out",
                "probe.jpg",
            ]
        )
        == 0
    )
    assert Path("probe.jpg").read_bytes() == jpeg
    assert f"verified event {event_id}" in capsys.readouterr().out
    Path("event.jws").write_bytes(Path("event.jws").read_bytes()[:-3] + b"AAA")
    assert alerts_main(["verify", "event.jws", "--registry", "auth/registry.json"]) == 2
