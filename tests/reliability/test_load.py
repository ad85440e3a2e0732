"""Load: 50 devices on the agent's real publishing path, one TLS Mosquitto, two
``lfr-alerts listen`` in one shared-subscription group, one store; every event stored once.

CI size: 50 devices for 25 s at 15 events/s across the fleet. Full size
(``LFR_RELIABILITY_SCALE=full``): 5 minutes at 100 events/s. The figures (events/s, latency,
CPU per component) are written to the artefacts as ``load/results.md`` and printed; nothing
here asserts a time: performance targets are not unit tests. The break-point search is
``python -m tools.load search`` (see docs/reliability.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tests.reliability.conftest import Recorder, sized
from tools.load.results import details, markdown
from tools.load.rig import LoadRig
from tools.processes import QUEUED

DEVICES = 50


def test_fifty_devices_two_listeners_every_event_stored_once(
    tmp_path: Path, artefacts: Path, record: Recorder
) -> None:
    rate, seconds = sized(15, 100), sized(25, 300)
    logs = artefacts / "load"
    rig = LoadRig(
        tmp_path / "fleet", DEVICES, logs, db_dir=tmp_path / "store", workers=4, log_level="INFO"
    )
    with rig:
        result = rig.step(rate, seconds)
        stored = rig.stored_ids()
    text = "\n\n".join([markdown([result], os.cpu_count() or 1), details([result])])
    (logs / "results.md").write_text(text + "\n")
    print("\n" + text)
    record("load-results", text)

    # Every event the devices produced is in the store, once; nothing else is.
    assert result.produced >= 0.9 * rate * seconds, "the devices did not produce their load"
    assert result.dropped == 0 and result.refused == 0 and result.drained
    assert result.missing == 0 and result.unexpected == 0
    assert len(stored) == len(set(stored)) == result.produced
    assert set(stored) == result.ids
    # The agents' own logs say the same: each event id logged as queued in an outbox.
    queued = [
        i for log in sorted(logs.glob("load-worker-*.log")) for i in QUEUED.findall(log.read_text())
    ]
    assert len(queued) == len(set(queued)) and set(queued) == result.ids
    # Both listeners took a share; together they stored each event exactly once.
    assert len(rig.listener_totals) == 2, "a listener did not report on SIGTERM"
    assert sum(t[0] for t in rig.listener_totals) == result.produced
    assert all(t[0] > 0 for t in rig.listener_totals), rig.listener_totals
    assert sum(t[2] for t in rig.listener_totals) == 0, "a genuine event was refused"

    # The measurement machinery produced figures for every event and every component.
    assert result.stored == result.produced and not math.isnan(result.latency["p99"])
    assert 0 < result.latency["p50"] <= result.latency["p99"] <= result.latency["max"]
    for component in ("broker", "listener-1", "listener-2", "devices"):
        assert result.cpu[component] > 0, component
    assert result.token_bytes > 5_000  # a face-sized probe travels with each event
