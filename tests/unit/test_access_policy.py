"""The access policy as data: who may write and read which topic filters, from the registry."""

from __future__ import annotations

from protocol.topics import parse_topic
from provisioning.policy import Access, IdentityAccess, Rule, access_policy
from provisioning.registry import Registry
from tests.unit.test_broker_files import sample_registry


def _by_name(policy: list[IdentityAccess]) -> dict[str, IdentityAccess]:
    return {identity.username: identity for identity in policy}


def test_devices_by_id_then_clients_by_name() -> None:
    names = [identity.username for identity in access_policy(sample_registry())]
    assert names == ["cam-01", "cam-02", "cam-10", "alerts", "alerts-2", "ops"]


def test_a_device_writes_its_events_and_status_and_reads_its_watchlist_and_command() -> None:
    cam = _by_name(access_policy(sample_registry()))["cam-10"]
    assert cam.active
    assert cam.rules == (
        Rule(Access.WRITE, "lfr/v1/euston/cam-10/events"),
        Rule(Access.WRITE, "lfr/v1/euston/cam-10/status"),
        Rule(Access.READ, "lfr/v1/euston/cam-10/watchlist"),
        Rule(Access.READ, "lfr/v1/euston/cam-10/command"),
    )
    for rule in cam.rules:  # only its own topics, never a wildcard
        topic = parse_topic(rule.topic_filter)
        assert (topic.site, topic.device_id) == ("euston", "cam-10")


def test_central_clients_get_their_role_across_the_fleet() -> None:
    policy = _by_name(access_policy(sample_registry()))
    assert policy["ops"].rules == (
        Rule(Access.WRITE, "lfr/v1/+/+/watchlist"),
        Rule(Access.WRITE, "lfr/v1/+/+/command"),
        Rule(Access.READ, "lfr/v1/+/+/status"),
    )
    assert policy["alerts"].rules == (
        Rule(Access.READ, "lfr/v1/+/+/events", "control-room"),
        Rule(Access.READ, "lfr/v1/+/+/status", "control-room"),
    )
    # ... and only through the control room's shared-subscription group.
    assert [r.subscription for r in policy["alerts"].rules] == [
        "$share/control-room/lfr/v1/+/+/events",
        "$share/control-room/lfr/v1/+/+/status",
    ]
    other = _by_name(access_policy(sample_registry(), "night-desk"))["alerts"]
    assert other.rules[0].subscription == "$share/night-desk/lfr/v1/+/+/events"
    # Only devices write events or status, each its own.
    writes = {
        (i.username, r.topic_filter)
        for i in policy.values()
        for r in i.rules
        if r.access == Access.WRITE
    }
    assert {(n, f) for n, f in writes if f.endswith(("/events", "/status"))} == {
        ("cam-01", "lfr/v1/kx/cam-01/events"),
        ("cam-01", "lfr/v1/kx/cam-01/status"),
        ("cam-10", "lfr/v1/euston/cam-10/events"),
        ("cam-10", "lfr/v1/euston/cam-10/status"),
    }


def test_revoked_identities_have_no_rules() -> None:
    policy = _by_name(access_policy(sample_registry()))
    for name in ("cam-02", "alerts-2"):
        assert not policy[name].active
        assert policy[name].status == "revoked"
        assert policy[name].rules == ()


def test_an_empty_registry_is_an_empty_policy() -> None:
    assert access_policy(Registry.empty()) == []
