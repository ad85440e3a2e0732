"""``broker.json``: where devices reach the broker. The one parser and writer of that file.

Two copies exist: the authority's (``broker-config`` records the address and the directory it
wrote the broker's files to) and the install bundle's (address only, read by
``device-install`` to write agent.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfrkit.files import atomic_write, read_bounded
from protocol.encoding import Fields, canonical_json, parse_json_object
from protocol.names import check_name

BROKER_JSON = "broker.json"
MAX_BYTES = 4096


@dataclass(frozen=True)
class BrokerInfo:
    host: str
    port: int
    dir: Path | None = None  # where broker-config wrote the broker's files (authority copy)
    # The only shared-subscription group the alerts role may join (authority copy).
    share_group: str | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @classmethod
    def parse(cls, data: bytes, what: str) -> BrokerInfo:
        """Raises BadEncoding naming ``what`` and the key at fault."""
        fields = Fields(
            parse_json_object(data, what, MAX_BYTES),
            what,
            allowed=frozenset({"host", "port", "dir", "share_group"}),
        )
        folder = Path(fields.text("dir", max_len=MAX_BYTES)) if fields.has("dir") else None
        group = None
        if fields.has("share_group"):
            group = check_name(fields.text("share_group", max_len=63), f"{what}: share_group")
        return cls(
            fields.text("host", max_len=253), fields.integer("port", 1, 65535), folder, group
        )

    def render(self) -> bytes:
        doc: dict[str, Any] = {"host": self.host, "port": self.port}
        if self.dir is not None:
            doc["dir"] = str(self.dir)
        if self.share_group is not None:
            doc["share_group"] = self.share_group
        return canonical_json(doc) + b"\n"


def read_broker_info(path: Path) -> BrokerInfo | None:
    """The broker.json at ``path``, or None when there is none."""
    if not path.exists():
        return None
    return BrokerInfo.parse(read_bounded(path, MAX_BYTES, BROKER_JSON), str(path))


def write_broker_info(path: Path, info: BrokerInfo) -> None:
    atomic_write(path, info.render(), 0o644)
