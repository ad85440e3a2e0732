"""Reliability suite: real broker, real processes, sizes chosen by ``LFR_RELIABILITY_SCALE``.

``ci`` (default) keeps the whole suite to a few minutes; ``full`` is what docs/reliability.md
reports (``make test-reliability FULL=1``). Every process log, status document and refused
input's error message lands in one session directory, which the secrets-hygiene test (always
run last) scans for key material, embeddings and subject data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SCALE = os.environ.get("LFR_RELIABILITY_SCALE", "ci")
if SCALE not in ("ci", "full"):
    raise RuntimeError(f"LFR_RELIABILITY_SCALE must be 'ci' or 'full', not {SCALE!r}")


def sized(ci: int, full: int) -> int:
    """The CI size or the full size of a trial count, duration or load."""
    return full if SCALE == "full" else ci


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    last = []
    for item in list(items):
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.integration)
            if Path(str(item.fspath)).name == "test_secrets_hygiene.py":
                items.remove(item)
                last.append(item)
    items.extend(last)


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where processes' logs and observed error messages go (scanned by the hygiene test)."""
    path = tmp_path_factory.getbasetemp() / "reliability-artefacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def in_process_log(artefacts: Path) -> Iterator[None]:
    """Everything logged in the test process itself, at every level, into the artefacts."""
    handler = logging.FileHandler(artefacts / "in-process.log")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


class Recorder:
    """``record(name, text)``: keep an observed message (error, status) for the hygiene scan."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, name: str, text: str) -> None:
        with open(self.directory / f"{name}.txt", "a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")


@pytest.fixture(scope="session")
def record(artefacts: Path) -> Recorder:
    return Recorder(artefacts)
