"""The status document: what the device builds, central parses back the same; garbage is
refused with one RejectedInput, whatever the bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import errors
from protocol.encoding import canonical_json
from protocol.status import (
    DeviceStatus,
    EventsReport,
    FramesReport,
    Rejection,
    Report,
    State,
    WatchlistReport,
    encode_status,
    offline_status,
    parse_status,
)
from tests.conftest import EMBEDDER, NOW
from tests.unit.test_parsers_fuzz import FUZZ, json_values, only_rejections, plausible

# What an agent published before the embedding schedule (a paused device with a watchlist, a
# refused command, alarms).
OLD_DOCUMENT = (
    b'{"alarms":["outbox 9/10 full","camera stalled: no frame for 12s"],"at":"2026-11-28T09:00:00Z"'
    b',"camera_errors":0,"camera_restarts":0,"command_counter":4,"deployment_id":"kx-2026-11-28"'
    b',"device_id":"cam-01","embedder_sha256":"' + EMBEDDER.encode() + b'","events_dropped":0'
    b',"events_held":0,"events_published":3,"events_queued":9,"expires_at":"2026-11-28T21:00:00Z"'
    b',"faces_detected":40,"faces_discarded":37,"faces_rejected_quality":{"blur":2,"small":1}'
    b',"fps":12.5,"frames":300,"frames_dropped":2,"last_rejection":{"at":"2026-11-28T08:59:00Z"'
    b',"reason":"rollback","what":"command"},"matches":3,"model_hashes":{"det":"'
    + b"a"
    * 64
    + b'"}'
    b',"outbox_max":10,"seconds_since_frame":12.0,"site":"kx","software_version":"0.1.0"'
    b',"state":"paused","uptime_s":600,"version_floor":7,"watchlist":"installed"'
    b',"watchlist_version":7}'
)


# The same device with the members added for the embedding schedule and the detector choice
# (issue 15).
AGENT_DOCUMENT = (
    OLD_DOCUMENT.replace(b',"embedder_sha256"', b',"dropped_fps":0.5,"embedder_sha256"')
    .replace(b',"device_id"', b',"detector":"yunet","device_id"')
    .replace(b',"faces_rejected_quality"', b',"faces_embedded":12,"faces_rejected_quality"')
    .replace(
        b',"state":"paused"',
        b',"stage_cpu_s":{"detect":20.25,"embed":7.5,"match":0.125},"state":"paused"',
    )
)


def report(**changes: Any) -> Report:
    base: dict[str, Any] = {
        "software_version": "0.1.0",
        "embedder_sha256": EMBEDDER,
        "model_hashes": {},
        "uptime_s": 5,
        "fps": 0.0,
        "seconds_since_frame": 0.0,
        "watchlist": WatchlistReport(None, None, None, "none", 0, 0, None),
        "frames": FramesReport(0, 0, 0, {}, 0, 0, 0, 0),
        "events": EventsReport(0, 0, 0, 0, 10_000),
        "alarms": (),
        "at": NOW,
    }
    return Report(**{**base, **changes})


def test_an_agent_document_parses_and_encodes_to_the_same_bytes() -> None:
    status = parse_status(AGENT_DOCUMENT)
    assert status.state is State.PAUSED and status.report is not None
    wl = status.report.watchlist
    assert (wl.version, wl.version_floor, wl.command_counter) == (7, 7, 4)
    assert wl.last_rejection == Rejection("command", "rollback", NOW - timedelta(minutes=1))
    assert status.report.frames.faces_rejected_quality == {"blur": 2, "small": 1}
    assert status.report.frames.faces_embedded == 12 and status.report.dropped_fps == 0.5
    assert status.report.frames.stage_cpu_s == {"detect": 20.25, "embed": 7.5, "match": 0.125}
    assert status.report.frames.detector == "yunet"
    assert encode_status(status) == AGENT_DOCUMENT


def test_a_document_from_before_the_embedding_schedule_still_parses() -> None:
    status = parse_status(OLD_DOCUMENT)
    assert status.report is not None and status.report.frames.matches == 3
    assert status.report.frames.faces_embedded == 0 and status.report.frames.stage_cpu_s == {}
    assert status.report.dropped_fps == 0.0 and status.report.frames.detector == ""


def test_the_time_to_alert_is_reported_once_there_was_an_alert() -> None:
    timed = AGENT_DOCUMENT.replace(
        b',"uptime_s"', b',"time_to_alert_s":{"last":0.75,"median":1.25},"uptime_s"'
    )
    status = parse_status(timed)
    assert status.report is not None
    assert status.report.frames.time_to_alert_s == {"last": 0.75, "median": 1.25}
    assert encode_status(status) == timed
    # Before the first alert the member is left out: the same bytes as before it existed.
    before = parse_status(AGENT_DOCUMENT).report
    assert before is not None and before.frames.time_to_alert_s == {}
    for bad in (b'{"last":-1}', b'{"last":"1s"}', b"[1]"):
        with pytest.raises(errors.RejectedInput):
            parse_status(timed.replace(b'{"last":0.75,"median":1.25}', bad))


def test_the_last_will_carries_only_state_and_name() -> None:
    will = offline_status("cam-01", "kx")
    assert will == b'{"device_id":"cam-01","site":"kx","state":"offline"}'
    assert parse_status(will) == DeviceStatus(State.OFFLINE, "cam-01", "kx")


def test_a_device_without_a_watchlist() -> None:
    status = DeviceStatus(State.ONLINE, "cam-01", "kx", report())
    doc = json.loads(encode_status(status))
    assert doc["watchlist_version"] is None and doc["expires_at"] is None
    assert doc["last_rejection"] is None and doc["watchlist"] == "none"
    assert parse_status(encode_status(status)) == status


def _doc(**changes: Any) -> bytes:
    doc = {**json.loads(AGENT_DOCUMENT), **changes}
    return canonical_json({k: v for k, v in doc.items() if v is not ...})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (64 * 1024 + 1), "oversize"),
        (b"[]", "bad_json"),
        (b'{"state":"offline","site":"kx"}', "bad_json"),  # no device_id
        (_doc(state="stopping"), "bad_json"),
        (_doc(device_id="CAM/01"), "bad_json"),  # not a topic-safe name
        (_doc(frames=-1), "bad_json"),
        (_doc(frames=2**60), "bad_json"),
        (_doc(frames=True), "bad_json"),
        (_doc(fps=-0.5), "bad_json"),
        (b'{"fps":NaN}', "bad_json"),
        (_doc(matches=...), "bad_json"),  # a partial document
        (_doc(owner="someone"), "bad_json"),  # a member nobody knows
        (_doc(alarms=["x"] * 65), "oversize"),
        (_doc(alarms=[""]), "bad_json"),
        (_doc(alarms=[{"nested": ["deep"]}]), "bad_json"),
        (_doc(model_hashes={"det": 5}), "bad_json"),
        (_doc(faces_rejected_quality={f"r{i}": 1 for i in range(65)}), "oversize"),
        (_doc(last_rejection={"what": "command", "reason": "rollback"}), "bad_json"),
        (_doc(expires_at="tomorrow"), "bad_json"),
        (_doc(embedder_sha256="E" * 64), "bad_json"),
        (b"[" * 5000 + b"]" * 5000, "bad_json"),
    ],
)
def test_garbage_is_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(errors.RejectedInput) as caught:
        parse_status(payload)
    assert caught.value.reason == reason


names = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?\Z")
counts = st.integers(0, 2**53)
seconds = st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
texts = st.text(min_size=1, max_size=40)
reports = st.builds(
    Report,
    software_version=texts,
    embedder_sha256=st.from_regex(r"\A[0-9a-f]{64}\Z"),
    model_hashes=st.dictionaries(texts, texts, max_size=4),
    uptime_s=st.integers(-(2**53), 2**53),
    fps=seconds,
    seconds_since_frame=seconds,
    watchlist=st.builds(
        WatchlistReport,
        version=st.none() | counts,
        deployment_id=st.none() | texts,
        expires_at=st.none() | moments,
        note=texts,
        version_floor=counts,
        command_counter=counts,
        last_rejection=st.none() | st.builds(Rejection, texts, texts, moments),
    ),
    frames=st.builds(
        FramesReport,
        counts,
        counts,
        counts,
        st.dictionaries(texts, counts, max_size=4),
        counts,
        counts,
        counts,
        counts,
    ),
    events=st.builds(EventsReport, counts, counts, counts, counts, counts),
    alarms=st.lists(texts, max_size=8).map(tuple),
    at=moments,
)
statuses = st.builds(DeviceStatus, st.sampled_from(State), names, names, st.none() | reports)


@settings(max_examples=300, deadline=None)
@given(statuses)
def test_built_documents_round_trip(status: DeviceStatus) -> None:
    encoded = encode_status(status)
    assert parse_status(encoded) == status
    assert encode_status(parse_status(encoded)) == encoded


@FUZZ
@given(st.binary(max_size=4096))
def test_bytes_only_ever_raise_rejected_input(data: bytes) -> None:
    only_rejections(lambda: parse_status(data))


@FUZZ
@given(plausible(json.loads(AGENT_DOCUMENT)))
def test_hostile_members_only_ever_raise_rejected_input(doc: dict[str, Any]) -> None:
    only_rejections(lambda: parse_status(canonical_json(doc)))


@FUZZ
@given(json_values)
def test_any_json_only_ever_raises_rejected_input(value: Any) -> None:
    only_rejections(lambda: parse_status(canonical_json(value)))


def test_people_seen_travel_as_tracks_started_and_older_documents_lack_them() -> None:
    counted = AGENT_DOCUMENT.replace(b',"uptime_s"', b',"tracks_started":42,"uptime_s"')
    status = parse_status(counted)
    assert status.report is not None and status.report.frames.tracks_started == 42
    assert encode_status(status) == counted
    older = parse_status(AGENT_DOCUMENT).report
    assert older is not None and older.frames.tracks_started is None
    assert encode_status(parse_status(AGENT_DOCUMENT)) == AGENT_DOCUMENT  # same bytes as before
    for bad in (b"-1", b'"42"', b"1.5"):
        with pytest.raises(errors.RejectedInput):
            parse_status(counted.replace(b'"tracks_started":42', b'"tracks_started":' + bad))
