"""Stand-ins for vendor packages that only exist on the target hardware.

In-process, :func:`use_fake_picamera2` installs the fake as ``picamera2`` for one test; a
subprocess (``lfr-agent``) gets it with ``PYTHONPATH=<this folder>`` (:func:`fake_env`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

FAKES = Path(__file__).resolve().parent


def use_fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``import picamera2`` gives the fake until the test ends (then nothing again)."""
    spec = importlib.util.spec_from_file_location("picamera2", FAKES / "picamera2" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    for name in [n for n in os.environ if n.startswith("FAKE_PICAMERA2_")]:
        monkeypatch.delenv(name)
    return module


def fake_env(**settings: str) -> dict[str, str]:
    """Environment for a subprocess that imports the fake picamera2 (FAKE_PICAMERA2_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_PICAMERA2_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAKES), env.get("PYTHONPATH")]))
    return env | {f"FAKE_PICAMERA2_{k.upper()}": v for k, v in settings.items()}
