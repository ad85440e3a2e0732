from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from provisioning.quickstart import quickstart
from tools.broker import Broker


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    quickstart(root, devices=2, now=datetime.now(UTC))
    return root


@pytest.fixture(scope="module")
def index(fleet_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fleet_dir / "quickstart.json").read_text())
    return data


@pytest.fixture(scope="module")
def broker(index: dict[str, Any]) -> Iterator[Broker]:
    running = Broker(
        Path(index["broker"]["config"]), index["broker"]["host"], index["broker"]["port"]
    )
    running.start()
    yield running
    running.stop()
