"""MQTT topic names: the one builder and parser of ``lfr/v1/{site}/{device}/{kind}``.

The device, the ops and control-room tools and the broker's access policy all name topics
through here, so a change of layout is one change. Pure: strings in, strings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol.errors import BadEncoding
from protocol.names import check_name

ROOT = "lfr/v1"
# The control room's shared-subscription group: the only one the broker lets the alerts role
# join (lfr-provision broker-config --share-group records another in broker.json).
DEFAULT_SHARE_GROUP = "control-room"


class Kind(StrEnum):
    WATCHLIST = "watchlist"  # ops -> device, retained
    COMMAND = "command"  # ops -> device, retained
    EVENTS = "events"  # device -> control room
    STATUS = "status"  # device -> everyone, retained, with the last will


# Who writes each kind: the device writes its own events and status, ops the rest.
DEVICE_WRITES = (Kind.EVENTS, Kind.STATUS)
DEVICE_READS = (Kind.WATCHLIST, Kind.COMMAND)


def device_topic(site: str, device_id: str, kind: Kind) -> str:
    return f"{ROOT}/{site}/{device_id}/{kind.value}"


@dataclass(frozen=True)
class DeviceTopics:
    """The four topics of one device."""

    site: str
    device_id: str

    def __getitem__(self, kind: Kind) -> str:
        return device_topic(self.site, self.device_id, kind)

    @property
    def watchlist(self) -> str:
        return self[Kind.WATCHLIST]

    @property
    def command(self) -> str:
        return self[Kind.COMMAND]

    @property
    def events(self) -> str:
        return self[Kind.EVENTS]

    @property
    def status(self) -> str:
        return self[Kind.STATUS]


def fleet_filter(kind: Kind, site: str | None = None) -> str:
    """Subscription filter for ``kind`` of every device (of ``site`` when given)."""
    return f"{ROOT}/{site or '+'}/+/{kind.value}"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: each message goes to one member of ``group``."""
    if not group or any(c in group for c in "/+#"):
        raise BadEncoding(f"consumer group {group!r} must not be empty or hold / + #")
    return f"$share/{group}/{topic_filter}"


@dataclass(frozen=True)
class TopicName:
    site: str
    device_id: str
    kind: Kind


def parse_topic(topic: str) -> TopicName:
    """The device and kind a message arrived on; raises BadEncoding for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != ROOT:
        raise BadEncoding(f"topic {topic[:200]!r} is not {ROOT}/SITE/DEVICE/KIND")
    try:
        kind = Kind(parts[4])
    except ValueError:
        raise BadEncoding(f"topic {topic[:200]!r} has an unknown kind") from None
    return TopicName(check_name(parts[2], "site"), check_name(parts[3], "device id"), kind)
