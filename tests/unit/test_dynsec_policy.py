"""The access policy as Mosquitto dynamic-security JSON and $CONTROL commands (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.brokers.mosquitto_dynsec import (
    DEFAULT_ACL_ACCESS,
    failed_responses,
    render_dynsec,
    sync_commands,
)
from provisioning.policy import access_policy
from provisioning.registry import ClientRecord
from tests.unit.test_broker_files import sample_registry


def _doc(group: str = "control-room") -> dict[str, Any]:
    registry = sample_registry().with_client(
        ClientRecord("broker-admin", "broker-admin", "active", "3a", "2027-01-01T00:00:00Z")
    )
    doc: dict[str, Any] = json.loads(render_dynsec(access_policy(registry, group)))
    return doc


def _acls(doc: dict[str, Any], role: str) -> set[tuple[str, str]]:
    (found,) = [r for r in doc["roles"] if r["rolename"] == role]
    assert all(a["allow"] is True for a in found["acls"])
    return {(a["acltype"], a["topic"]) for a in found["acls"]}


def test_everything_not_allowed_is_refused_and_revoked_identities_are_absent() -> None:
    doc = _doc()
    assert doc["defaultACLAccess"] == DEFAULT_ACL_ACCESS
    assert not any(DEFAULT_ACL_ACCESS[k] for k in ("publishClientSend", "subscribe"))
    assert DEFAULT_ACL_ACCESS["publishClientReceive"] is False
    users = {c["username"]: [r["rolename"] for r in c["roles"]] for c in doc["clients"]}
    assert users == {
        "cam-01": ["lfr-device-cam-01"],
        "cam-10": ["lfr-device-cam-10"],
        "alerts": ["lfr-alerts"],
        "broker-admin": ["lfr-broker-admin"],
        "ops": ["lfr-ops"],
    }  # cam-02 and alerts-2 are revoked: unknown to the plugin, so refused everything
    assert not any("password" in c for c in doc["clients"])  # TLS identities only


def test_alerts_may_subscribe_only_through_the_configured_group() -> None:
    assert _acls(_doc(), "lfr-alerts") == {
        ("subscribePattern", "$share/control-room/lfr/v1/+/+/events"),
        ("publishClientReceive", "lfr/v1/+/+/events"),
        ("subscribePattern", "$share/control-room/lfr/v1/+/+/status"),
        ("publishClientReceive", "lfr/v1/+/+/status"),
    }
    other = _acls(_doc("night-desk"), "lfr-alerts")
    assert ("subscribePattern", "$share/night-desk/lfr/v1/+/+/events") in other
    assert not any("control-room" in topic for _, topic in other)


def test_devices_get_their_exact_topics_ops_and_admin_their_roles() -> None:
    doc = _doc()
    assert _acls(doc, "lfr-device-cam-10") == {
        ("publishClientSend", "lfr/v1/euston/cam-10/events"),
        ("publishClientSend", "lfr/v1/euston/cam-10/status"),
        ("subscribeLiteral", "lfr/v1/euston/cam-10/watchlist"),
        ("publishClientReceive", "lfr/v1/euston/cam-10/watchlist"),
        ("subscribeLiteral", "lfr/v1/euston/cam-10/command"),
        ("publishClientReceive", "lfr/v1/euston/cam-10/command"),
    }
    assert _acls(doc, "lfr-ops") == {
        ("publishClientSend", "lfr/v1/+/+/watchlist"),
        ("publishClientSend", "lfr/v1/+/+/command"),
        ("subscribePattern", "lfr/v1/+/+/status"),
        ("publishClientReceive", "lfr/v1/+/+/status"),
    }
    assert _acls(doc, "lfr-broker-admin") == {
        ("publishClientSend", "$CONTROL/dynamic-security/#"),
        ("subscribePattern", "$CONTROL/dynamic-security/#"),
        ("publishClientReceive", "$CONTROL/dynamic-security/#"),
    }
    # Nobody but the admin role touches $CONTROL.
    for role in doc["roles"]:
        if role["rolename"] != "lfr-broker-admin":
            assert not any(a["topic"].startswith("$CONTROL") for a in role["acls"])


def test_sync_creates_active_identities_and_deletes_revoked_ones() -> None:
    commands = sync_commands(access_policy(sample_registry()))
    by_kind: dict[str, list[str]] = {}
    for command in commands:
        name = command.get("username") or command["rolename"]
        by_kind.setdefault(command["command"], []).append(name)
    assert by_kind["createClient"] == ["cam-01", "cam-10", "alerts", "ops"]
    assert by_kind["deleteClient"] == ["cam-02", "alerts-2"]
    assert by_kind["deleteRole"] == ["lfr-device-cam-02"]  # the alerts role stays for others
    assert "disableClient" not in by_kind  # it does not stop a certificate login
    # Roles exist before the clients that name them.
    kinds = [c["command"] for c in commands]
    assert kinds.index("createClient") > max(i for i, k in enumerate(kinds) if k == "createRole")


def test_responses_already_done_are_not_failures() -> None:
    ok = {
        "responses": [
            {"command": "createRole", "error": "Role already exists"},
            {"command": "createClient", "error": "Client already exists"},
            {"command": "deleteClient", "error": "Client not found"},
            {"command": "createClient"},
        ]
    }
    assert failed_responses(json.dumps(ok).encode()) == []
    bad = {"responses": [{"command": "createRole", "error": "Invalid/missing acls"}]}
    assert failed_responses(json.dumps(bad).encode()) == ["createRole: Invalid/missing acls"]


@pytest.mark.parametrize("payload", [b"", b"[1]", b'{"responses": 3}', b'{"responses": [1]}'])
def test_a_malformed_response_is_a_failure(payload: bytes) -> None:
    assert failed_responses(payload) != []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_list_of_errors_never_a_crash(payload: bytes) -> None:
    assert isinstance(failed_responses(payload), list)
