"""`lfr-agent bench --quick` through the installed CLI, on this machine's real models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main as agent_main
from tests.integration.agent_helpers import LFR_AGENT

pytestmark = pytest.mark.integration


def node_config(tmp_path: Path, vision: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[device]\nid = "bench-node"\nsite = "lab"\nstate_dir = "{tmp_path / "state"}"\n'
        '[broker]\nhost = "localhost"\n[camera]\nwidth = 1920\nheight = 1080\n' + vision
    )
    return path


def test_bench_quick_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [LFR_AGENT, "bench", "--quick", "--json", "--config", str(node_config(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert [f["profile"] for f in report["face_times"]] == ["accurate", "fast"]
    assert all(f["per_face_ms"] > 0 for f in report["face_times"])
    cells = report["cells"]
    # --quick: the configured resolution only (1080p), 1, 3 and 10 faces, both profiles.
    assert {(c["profile"], c["width"], c["height"], c["faces"]) for c in cells} == {
        (p, 1920, 1080, n) for p in ("accurate", "fast") for n in (1, 3, 10)
    }
    for c in cells:
        assert c["all_found"] and c["detector"] == "yunet"  # auto picks YuNet at 1080 rows
        assert c["fps"] > 0 and c["fps_per_cpu_s"] > 0
    verdict = report["verdict"]
    assert verdict["lines"][-1].startswith("--quick")
    assert verdict["profile"] in (None, "accurate", "fast")
    assert report["board"]["cores"] >= 1
    assert "bench: profile accurate" in done.stderr  # progress goes to stderr


def test_bench_says_when_the_configured_detector_misses_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # BlazeFace short-range is blind to concourse-sized faces at 1080p (issue 15).
    config = node_config(tmp_path, '[vision]\ndetector = "blazeface"\n')
    assert agent_main(["bench", "--quick", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "found 0 of 3 faces at 1920x1080; fix the detector setting" in out
    assert "conclusion: no profile sustains" in out


def test_bench_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text("[device]\n")
    assert agent_main(["bench", "--quick", "--config", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "agent.toml" in err and len(err.strip().splitlines()) == 1
