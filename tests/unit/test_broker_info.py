"""broker.json: one parser for the authority's copy and the install bundle's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import errors
from provisioning.broker_info import MAX_BYTES, BrokerInfo, read_broker_info, write_broker_info

hosts = st.text(min_size=1, max_size=253)
ports = st.integers(1, 65535)
dirs = st.none() | st.builds(Path, st.text(min_size=1, max_size=200))
groups = st.none() | st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(hosts, ports, dirs, groups)
def test_render_then_parse_gives_the_same(
    host: str, port: int, folder: Path | None, group: str | None
) -> None:
    info = BrokerInfo(host, port, folder, group)
    assert BrokerInfo.parse(info.render(), "broker.json") == info


@pytest.mark.parametrize("group", ["", "a/b", "+", "#", "$share", "Control-Room", "x" * 64])
def test_a_share_group_that_cannot_be_one_is_refused(group: str) -> None:
    doc = json.dumps({"host": "h", "port": 1, "share_group": group}).encode()
    with pytest.raises(errors.RejectedInput, match=r"broker\.json"):
        BrokerInfo.parse(doc, "broker.json")


json_values = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=300) | st.lists(st.none())
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["host", "port", "dir", "share_group", "extra"]), json_values)
)
def test_any_object_parses_or_is_rejected(doc: dict[str, Any]) -> None:
    try:
        info = BrokerInfo.parse(json.dumps(doc).encode(), "broker.json")
    except errors.RejectedInput as exc:
        assert str(exc).startswith("broker.json")
    else:
        assert 1 <= info.port <= 65535 and 1 <= len(info.host) <= 253


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_rejected(data: bytes) -> None:
    try:
        BrokerInfo.parse(data, "broker.json")
    except errors.RejectedInput as exc:
        assert str(exc).startswith("broker.json")


def test_the_bytes_written_are_the_ones_devices_and_ops_already_have(tmp_path: Path) -> None:
    write_broker_info(tmp_path / "a.json", BrokerInfo("10.0.0.5", 8883))
    write_broker_info(tmp_path / "b.json", BrokerInfo("h", 1883, Path("/srv/broker")))
    assert (tmp_path / "a.json").read_bytes() == b'{"host":"10.0.0.5","port":8883}\n'
    assert (tmp_path / "b.json").read_bytes() == b'{"dir":"/srv/broker","host":"h","port":1883}\n'
    info = read_broker_info(tmp_path / "b.json")
    assert info == BrokerInfo("h", 1883, Path("/srv/broker")) and info.address == ("h", 1883)
    assert read_broker_info(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"host": "h", "port": "8883"}', "'port'"),
        ('{"host": "h", "port": 0}', "'port'"),
        ('{"host": "h", "port": true}', "'port'"),
        ('{"host": "", "port": 8883}', "'host'"),
        ('{"port": 8883}', "'host'"),
        ('{"host": "h", "port": 8883, "user": "x"}', "'user'"),
        ('{"host": "h", "port": 8883, "dir": 5}', "'dir'"),
        ("[1, 2]", "JSON object"),
        ("{not json", "JSON"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "broker.json"
    path.write_text(text)
    with pytest.raises(errors.BadEncoding) as caught:
        read_broker_info(path)
    message = str(caught.value)
    assert str(path) in message and key in message and "\n" not in message


def test_size_is_checked_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "broker.json"
    path.write_bytes(b"{" * (MAX_BYTES + 1))
    with pytest.raises(errors.Oversize):
        read_broker_info(path)
