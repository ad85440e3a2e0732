"""The broker's access policy, computed from the registry as data (docs/broker.md).

Per identity (certificate CN = MQTT username), the topic filters it may write (publish) and
read (subscribe to and receive); everything else is denied. A device writes only its own
``events`` and ``status`` and reads only its own ``watchlist`` and ``command``; central
clients get their role's fleet-wide filters; revoked identities get no rules at all. The
alerts role reads events and status only through a shared subscription of the control
room's group (``Rule.share_group``): the dynamic-security rendering lets it subscribe to
``$share/{group}/...`` and nothing else. The renderers in ``provisioning.brokers`` turn this
into one broker's syntax. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol.topics import (
    DEFAULT_SHARE_GROUP,
    DEVICE_READS,
    DEVICE_WRITES,
    DeviceTopics,
    Kind,
    fleet_filter,
    shared,
)
from provisioning.registry import Registry

DEVICE = "device"


class Access(StrEnum):
    WRITE = "write"  # publish
    READ = "read"  # subscribe and receive


@dataclass(frozen=True)
class Rule:
    access: Access
    topic_filter: str
    # READ only through ``$share/{share_group}/{topic_filter}`` (a broker that can check
    # the group refuses any other subscription to it); None: a plain subscription.
    share_group: str | None = None

    @property
    def subscription(self) -> str:
        """The filter a client must SUBSCRIBE to for this rule."""
        if self.share_group is None:
            return self.topic_filter
        return shared(self.share_group, self.topic_filter)


@dataclass(frozen=True)
class IdentityAccess:
    """What one username may do. Not active (revoked): no rules, so it is denied everything."""

    username: str
    status: str
    rules: tuple[Rule, ...]
    kind: str = "device"  # DEVICE or the central client's role

    @property
    def active(self) -> bool:
        return self.status == "active"


# The broker-admin identity changes the dynamic-security plugin's clients and roles live
# (provisioning.broker_admin); no other identity may touch $CONTROL.
DYNSEC_CONTROL = "$CONTROL/dynamic-security/#"


def role_rules(role: str, share_group: str = DEFAULT_SHARE_GROUP) -> tuple[Rule, ...]:
    """What a central client role may do, across the fleet. Alert consumers read events and
    status through the control room's shared subscription group only."""
    if role == "ops":
        return (
            Rule(Access.WRITE, fleet_filter(Kind.WATCHLIST)),
            Rule(Access.WRITE, fleet_filter(Kind.COMMAND)),
            Rule(Access.READ, fleet_filter(Kind.STATUS)),
        )
    if role == "alerts":
        shared(share_group, "x")  # BadEncoding now for a group that cannot be one
        return (
            Rule(Access.READ, fleet_filter(Kind.EVENTS), share_group),
            Rule(Access.READ, fleet_filter(Kind.STATUS), share_group),
        )
    if role == "broker-admin":
        return (Rule(Access.WRITE, DYNSEC_CONTROL), Rule(Access.READ, DYNSEC_CONTROL))
    raise ValueError(f"unknown role {role!r}")


def device_rules(site: str, device_id: str) -> tuple[Rule, ...]:
    topics = DeviceTopics(site, device_id)
    return (
        *(Rule(Access.WRITE, topics[kind]) for kind in DEVICE_WRITES),
        *(Rule(Access.READ, topics[kind]) for kind in DEVICE_READS),
    )


def access_policy(
    registry: Registry, share_group: str = DEFAULT_SHARE_GROUP
) -> list[IdentityAccess]:
    """Devices by id, then central clients by name: the order the rendered files keep."""
    policy = []
    for device in sorted(registry.devices.values(), key=lambda d: d.device_id):
        active = device.status == "active"
        rules = device_rules(device.site, device.device_id) if active else ()
        policy.append(IdentityAccess(device.device_id, device.status, rules))
    for client in sorted(registry.clients.values(), key=lambda c: c.name):
        rules = role_rules(client.role, share_group) if client.status == "active" else ()
        policy.append(IdentityAccess(client.name, client.status, rules, client.role))
    return policy
