"""``lfr-alerts export`` (issue 17, finding 8): private files, no spreadsheet formulas."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from central import alerts_cli
from central.pilot import neutralise_cell
from central.store import AlertStore
from protocol.event import sign_event
from tests.conftest import Fleet
from tests.unit.test_event import make_event


def test_export_is_private_and_formula_cells_are_neutralised(tmp_path: Path, fleet: Fleet) -> None:
    db = f"sqlite:///{tmp_path}/alerts.db"
    store = AlertStore(db)
    event = make_event(fleet)
    store.add(event, sign_event(event, fleet.device_signing))
    store.adjudicate(event.event_id, "confirmed", '=HYPERLINK("http://x","y")')
    store.close()
    previous = os.umask(0o022)
    try:
        for fmt in ("csv", "json"):
            out = tmp_path / f"export.{fmt}"
            assert alerts_cli.main(["export", "--db", db, "--format", fmt, "--out", str(out)]) == 0
            assert stat.S_IMODE(out.stat().st_mode) == 0o600
    finally:
        os.umask(previous)
    text = (tmp_path / "export.csv").read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert "0.710" in text or "0.71" in text  # numbers stay numbers
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_cell(dangerous) == "'" + dangerous
    assert neutralise_cell("PC 1") == "PC 1" and neutralise_cell(-0.5) == -0.5
