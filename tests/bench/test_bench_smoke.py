"""CI keeps `make bench` working: one quick run, a report with every section (no timings
are asserted: performance lives in the report, not in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench import cli, report

pytestmark = pytest.mark.integration


def test_quick_bench_writes_the_report(tmp_path: Path) -> None:
    assert cli.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bench.md").read_text()
    for section in (
        "Per-stage latency",
        "baseline: OpenCV Haar",
        "publish: put -> PUBACK",
        "Frame to event",
        "TFLite models alone: ai-edge-litert vs tflite-runtime",
        "frames per second",
        "Real clips",
        "1080p concourse: 10 people walking",
        "Detection: recall by face size",
        "Matching one probe",
        "The agent as a process",
    ):
        assert section in text
    # The runtime comparison says which runtimes ran and, for any that did not, why.
    summary = json.loads((tmp_path / "bench.json").read_text())
    runtimes = summary["runtimes"]
    assert "ai-edge-litert" in runtimes or runtimes["failures"]
    if "tflite-runtime" not in runtimes:
        assert "tflite-runtime column is absent" in text
    for plot in ("bench_matching.png", "bench_latency.png"):
        assert (tmp_path / plot).stat().st_size > 1000
    # Every event the control room received verified; the agent did real work.
    assert summary["publish_ms"]["n"] > 0 and summary["frame_to_event_received_ms"]["n"] > 0
    assert summary["agent"]["peak_rss_mb"] > 10
    assert summary["agent"]["faces_detected"] > 0
    # The report is rendered from bench.json alone: rendering it again gives the same file.
    (tmp_path / "bench.md").unlink()
    assert report.main([str(tmp_path / "bench.json")]) == 0
    assert (tmp_path / "bench.md").read_text() == text
