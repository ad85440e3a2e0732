"""lfr-provision: the technician + ops sequence, idempotency, --force, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.config import load_config
from lfrkit import tls
from protocol import hpke
from protocol.encoding import b64url_encode, canonical_json
from protocol.enrolment import EnrolmentRequest, parse_request, sign_request
from provisioning import ca
from tests.unit.provision_cli import ok, refused

NOW = datetime.now(UTC)


@pytest.fixture
def ops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    ok("init-authority", "--out", "auth")
    ok(
        "broker-config",
        "--authority",
        "auth",
        "--out",
        "broker",
        "--listen",
        "127.0.0.1:18883",
        "--user",
        "root",
    )
    return tmp_path


def test_full_sequence_writes_a_config_the_agent_accepts(ops: Path) -> None:
    ok("device-init", "--id", "cam-07", "--site", "euston", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    ok("device-install", "b", "--state", "node", "--config", "etc/agent.toml")
    config = load_config(Path("etc/agent.toml"))
    assert (config.device.id, config.device.site) == ("cam-07", "euston")
    assert (config.broker.host, config.broker.port) == ("127.0.0.1", 18883)
    assert config.client_cert == (ops / "node" / "device.crt").resolve()


def test_every_step_is_idempotent(ops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
        ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
        ok("device-install", "b", "--state", "node", "--config", "agent.toml")
        ok("broker-config", "--authority", "auth", "--out", "broker", "--listen", "127.0.0.1:18883")
    out = capsys.readouterr().out
    assert "already initialised" in out and "already approved" in out
    assert "already installed; unchanged" in out
    registry = json.loads(Path("auth/registry.json").read_text())
    assert len(registry["devices"]) == 1


def test_existing_identity_needs_force_which_archives(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    old_key = Path("node/keys/signing.key").read_bytes()
    err = refused(capsys, "device-init", "--id", "cam-02", "--site", "kx", "--state", "node")
    assert "already holds the identity cam-01@kx" in err and "--force" in err
    ok("device-init", "--id", "cam-02", "--site", "kx", "--state", "node", "--force")
    assert Path("node/keys/signing.key").read_bytes() != old_key
    archived = list(Path("node/archive").glob("*/keys/signing.key"))
    assert [p.read_bytes() for p in archived] == [old_key]
    refused(capsys, "init-authority", "--out", "auth")


def test_config_edited_by_hand_is_kept_without_force(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    ok("device-install", "b", "--state", "node", "--config", "agent.toml")
    Path("agent.toml").write_text(Path("agent.toml").read_text() + "# my notes\n")
    assert "--force" in refused(
        capsys,
        "device-install",
        "b",
        "--state",
        "node",
        "--config",
        "agent.toml",
        "--broker",
        "10.0.0.5:8883",
    )
    ok(
        "device-install",
        "b",
        "--state",
        "node",
        "--config",
        "agent.toml",
        "--broker",
        "10.0.0.5:8883",
        "--force",
    )
    assert load_config(Path("agent.toml")).broker.host == "10.0.0.5"


def _request(device_id: str = "cam-01", cn: str | None = None) -> tuple[bytes, EnrolmentRequest]:
    key = ed25519.Ed25519PrivateKey.generate()
    request = EnrolmentRequest(
        device_id,
        "kx",
        NOW,
        key.public_key(),
        {hpke.DEFAULT_SUITE: hpke.generate_key(hpke.DEFAULT_SUITE).public_key()},
        ca.make_csr(tls.new_tls_key(), cn or device_id),
    )
    return sign_request(request, key), request


def test_bad_requests_are_refused_with_one_line(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("garbage.json").write_text("{not json")
    assert "request.json" in refused(
        capsys, "approve", "garbage.json", "--authority", "auth", "--out", "b"
    )
    data, _ = _request(cn="cam-99")
    Path("cn.json").write_bytes(data)
    assert "CN 'cam-99' differs" in refused(
        capsys, "approve", "cn.json", "--authority", "auth", "--out", "b"
    )
    data, request = _request()
    unsigned = json.loads(data)
    del unsigned["signature"]
    Path("unsigned.json").write_bytes(canonical_json(unsigned))
    assert "signature" in refused(
        capsys, "approve", "unsigned.json", "--authority", "auth", "--out", "b"
    )
    unsigned["signature"] = b64url_encode(ed25519.Ed25519PrivateKey.generate().sign(b"x"))
    Path("nobody.json").write_bytes(canonical_json(unsigned))
    assert "not signed by the device key" in refused(
        capsys, "approve", "nobody.json", "--authority", "auth", "--out", "b"
    )
    assert parse_request(data).device_id == request.device_id


def test_unknown_device_and_revoked_device(ops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown" in refused(capsys, "revoke", "cam-99", "--authority", "auth")
    assert "unknown device" in refused(
        capsys, "renew", "cam-99", "--authority", "auth", "--out", "r"
    )
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    ok("renew", "cam-01", "--authority", "auth", "--out", "r")
    ok("device-install", "r", "--state", "node")
    ok("revoke", "cam-01", "--authority", "auth")
    users = [
        c["username"]
        for c in json.loads(Path("broker/dynamic-security.json").read_text())["clients"]
    ]
    assert "cam-01" not in users and "broker-admin" in users
    # No broker runs here: the change waits in the file, and the operator is told so.
    assert "not applied live" in capsys.readouterr().err
    assert "revoked" in refused(
        capsys, "approve", "node/request.json", "--authority", "auth", "--out", "b"
    )
    capsys.readouterr()
    ok("registry", "list", "--authority", "auth", "--json")
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["status"]) for r in rows] == [
        ("broker-admin", "active"),  # broker-config's own client for live policy changes
        ("cam-01", "revoked"),
    ]


def test_quickstart_index_and_rerun(tmp_path: Path) -> None:
    ok("quickstart", "--dir", str(tmp_path / "qs"), "--devices", "2")
    index = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    for key in ("ca_cert", "authority_dir", "registry", "adjudication_key"):
        assert Path(index[key]).is_absolute() and Path(index[key]).exists()
    assert Path(index["broker"]["config"]).exists()
    assert [d["id"] for d in index["devices"]] == ["cam-01", "cam-02"]
    for device in index["devices"]:
        for key in ("config", "state_dir", "cert", "key"):
            assert Path(device[key]).exists()
    assert set(index["clients"]) == {"ops", "alerts"}
    assert len(index["ops_keys"]) == 2
    ok("quickstart", "--dir", str(tmp_path / "qs"), "--devices", "3")
    again = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    assert again["broker"]["port"] == index["broker"]["port"]
    assert again["devices"][:2] == index["devices"]
    assert len(again["devices"]) == 3


def test_bad_bundle_broker_json_is_refused_with_one_line(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    assert json.loads(Path("b/broker.json").read_text()) == {"host": "127.0.0.1", "port": 18883}
    Path("b/broker.json").write_text('{"host": "127.0.0.1", "port": 99999}')
    err = refused(capsys, "device-install", "b", "--state", "node", "--config", "agent.toml")
    assert "b/broker.json" in err and "'port'" in err


def test_broker_acl_renders_the_policy_for_mosquitto_and_emqx(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok("device-init", "--id", "cam-01", "--site", "kx", "--state", "node")
    ok("approve", "node/request.json", "--authority", "auth", "--out", "b")
    ok("issue-client", "ops", "--role", "ops", "--authority", "auth", "--out", "clients")
    capsys.readouterr()
    ok("broker-acl", "--authority", "auth")
    # what broker-config (and approve, issue-client after it) wrote
    assert capsys.readouterr().out == Path("broker/dynamic-security.json").read_text()
    ok("broker-acl", "--authority", "auth", "--flavour", "mosquitto-acl")
    acl = capsys.readouterr().out
    assert "user cam-01\ntopic write lfr/v1/kx/cam-01/events\n" in acl
    ok("broker-acl", "--authority", "auth", "--flavour", "emqx", "--out", "acl.conf")
    emqx = Path("acl.conf").read_text()
    assert (
        '{allow, {user, "cam-01"}, publish, ["lfr/v1/kx/cam-01/events", '
        '"lfr/v1/kx/cam-01/status"]}.\n'
    ) in emqx
    assert '{allow, {user, "ops"}, subscribe, ["lfr/v1/+/+/status"]}.\n' in emqx
    assert emqx.endswith("\n{deny, all}.\n")
    ok("revoke", "cam-01", "--authority", "auth")
    capsys.readouterr()
    ok("broker-acl", "--authority", "auth", "--flavour", "emqx")
    after = capsys.readouterr().out
    assert '{user, "cam-01"}' not in after and '%% "cam-01": revoked, no access' in after


def test_share_group_is_recorded_and_a_bad_one_refused(
    ops: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("broker-config", "--authority", "auth", "--out", "broker", "--listen", "127.0.0.1:1")
    for bad in ("a/b", "+", "#", "Control-Room", ""):
        err = refused(capsys, *args, "--share-group", bad)
        assert "--share-group" in err and len(err.strip().splitlines()) == 1, err
    assert json.loads(Path("auth/broker.json").read_text())["share_group"] == "control-room"
    ok(*args, "--share-group", "night-desk")
    assert json.loads(Path("auth/broker.json").read_text())["share_group"] == "night-desk"
    capsys.readouterr()
    ok("broker-acl", "--authority", "auth")
    policy = json.loads(capsys.readouterr().out)
    # no alerts client yet: no alerts role either
    assert not any(r["rolename"] == "lfr-alerts" for r in policy["roles"])
    ok("issue-client", "cr-1", "--role", "alerts", "--authority", "auth", "--out", "clients")
    capsys.readouterr()
    ok("broker-acl", "--authority", "auth")
    policy = json.loads(capsys.readouterr().out)
    (alerts,) = [r for r in policy["roles"] if r["rolename"] == "lfr-alerts"]
    assert {a["topic"] for a in alerts["acls"]} >= {"$share/night-desk/lfr/v1/+/+/events"}
