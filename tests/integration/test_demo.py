"""`make demo` as a newcomer runs it: the whole system, one alert, nothing left running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_demo_end_to_end_twice(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_DIR": str(tmp_path), "DEMO_CACHE": str(ROOT / ".demo" / "cache")}
    for _ in range(2):  # a second run works too
        result = subprocess.run(
            [sys.executable, "-m", "tools.demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        alerts = [line for line in result.stdout.splitlines() if line.startswith("ALERT")]
        assert len(alerts) == 1 and "subject WL-0001" in alerts[0], result.stdout
        assert "demo finished" in result.stdout
        assert len(list((tmp_path / "probes").glob("*.jpg"))) == 1
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout == "", leftover.stdout
