"""What the reliability tests do around a fleet (:mod:`tools.processes` runs it): a crowd clip
for the synthetic backend, a section added to an agent.toml, the event ids in a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from central.store import AlertStore
from lfrkit.toml_text import toml_value
from tools.synthetic import Appearance, make_clip


def stored_ids(db: Path) -> list[str]:
    """Event ids in an ``lfr-alerts`` SQLite store (a list: duplicates would show)."""
    store = AlertStore(f"sqlite:///{db}")
    try:
        return [str(row[0]) for row in store.rows("SELECT event_id FROM alerts")]
    finally:
        store.close()


def crowd_clip(path: Path, people: int, span: int = 15, gap: int = 45) -> Path:
    """A looping clip in which ``people`` subjects (colours 0..people-1) walk through in three
    lanes, then ``gap`` empty frames (40 ms each) so every track ends before the next loop:
    each loop yields one event per person when the cool-down is short."""
    lanes = [
        Appearance(colour=c, first=2 + (c // 3) * span, last=(c // 3 + 1) * span - 2, row=c % 3)
        for c in range(people)
    ]
    return make_clip(path, (people + 2) // 3 * span + gap, lanes)


def set_section(config: Path, section: str, **values: Any) -> None:
    """Append a TOML section to an agent.toml (one that is not there yet)."""
    text = config.read_text()
    if f"[{section}]" in text:
        raise ValueError(f"{config} already has [{section}]")
    body = "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
    config.write_text(text + f"\n[{section}]\n" + body)
