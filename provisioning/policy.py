"""The broker's access policy, computed from the registry as data (docs/broker.md).

Per identity (certificate CN = MQTT username), the topic filters it may write (publish) and
read (subscribe to and receive); everything else is denied. A device writes only its own
``events`` and ``status`` and reads only its own ``watchlist`` and ``command``; central
clients get their role's fleet-wide filters; revoked identities get no rules at all. The
renderers in ``provisioning.brokers`` turn this into one broker's syntax. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol.topics import DEVICE_READS, DEVICE_WRITES, DeviceTopics, Kind, fleet_filter
from provisioning.registry import Registry


class Access(StrEnum):
    WRITE = "write"  # publish
    READ = "read"  # subscribe and receive


@dataclass(frozen=True)
class Rule:
    access: Access
    topic_filter: str


@dataclass(frozen=True)
class IdentityAccess:
    """What one username may do. Not active (revoked): no rules, so it is denied everything."""

    username: str
    status: str
    rules: tuple[Rule, ...]

    @property
    def active(self) -> bool:
        return self.status == "active"


# What each central client role may do, across the fleet. Alert consumers read events through
# shared subscriptions ($share/{group}/...), which brokers authorise as the plain filter.
ROLE_RULES: dict[str, tuple[Rule, ...]] = {
    "ops": (
        Rule(Access.WRITE, fleet_filter(Kind.WATCHLIST)),
        Rule(Access.WRITE, fleet_filter(Kind.COMMAND)),
        Rule(Access.READ, fleet_filter(Kind.STATUS)),
    ),
    "alerts": (
        Rule(Access.READ, fleet_filter(Kind.EVENTS)),
        Rule(Access.READ, fleet_filter(Kind.STATUS)),
    ),
}


def device_rules(site: str, device_id: str) -> tuple[Rule, ...]:
    topics = DeviceTopics(site, device_id)
    return (
        *(Rule(Access.WRITE, topics[kind]) for kind in DEVICE_WRITES),
        *(Rule(Access.READ, topics[kind]) for kind in DEVICE_READS),
    )


def access_policy(registry: Registry) -> list[IdentityAccess]:
    """Devices by id, then central clients by name: the order the rendered files keep."""
    policy = []
    for device in sorted(registry.devices.values(), key=lambda d: d.device_id):
        active = device.status == "active"
        rules = device_rules(device.site, device.device_id) if active else ()
        policy.append(IdentityAccess(device.device_id, device.status, rules))
    for client in sorted(registry.clients.values(), key=lambda c: c.name):
        rules = ROLE_RULES[client.role] if client.status == "active" else ()
        policy.append(IdentityAccess(client.name, client.status, rules))
    return policy
