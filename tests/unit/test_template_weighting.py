"""The quality-weighted template that the walk-through's --diagnose measures, and the
diagnosis report itself (fed made-up traces: the bench's own logic, no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.core.matcher import Matcher
from agent.core.template import Template
from protocol.entries import Entry
from tools.bench.walkthrough_diagnose import WalkerTrace, _scores, report
from tools.bench.walkthrough_scene import Person, Walker


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_the_weighted_template_leans_to_the_better_faces() -> None:
    t: Template[None] = Template(2)
    t.add(unit([1, 0, 0]), 0.9)
    t.add(unit([0, 1, 0]), 0.1)
    plain, weighted = t.vector(), t.weighted_vector()
    assert plain == pytest.approx(unit([1, 1, 0]))
    assert weighted == pytest.approx(unit([0.9, 0.1, 0]))
    t.wipe()
    with pytest.raises(ValueError, match="empty template"):
        t.weighted_vector()
    zero: Template[None] = Template(1)
    zero.add(unit([0, 0, 1]), 0.0)  # no quality at all: the plain mean
    assert zero.weighted_vector() == pytest.approx(unit([0, 0, 1]))


def walker(ref: str | None) -> WalkerTrace:
    person = Person(ref or "x", ref, (), (Path("x.jpg"),))
    w = Walker(person, 0, 0, (np.zeros((4, 4, 3), np.uint8),), ((0.0, 0.0, 4.0, 4.0),), 1.0)
    return WalkerTrace(w)


def test_the_diagnosis_scores_own_and_other_entries_and_reports() -> None:
    entries = [
        Entry(f"WL-{i}", "wanted", None, unit(np.eye(4)[i].tolist())[None]) for i in range(3)
    ]
    matcher = Matcher(entries, 0.8)
    index = {e.subject_ref: i for i, e in enumerate(entries)}
    listed, stranger = walker("WL-1"), walker(None)
    own, other = _scores(listed, unit([0.1, 1, 0.3, 0]), matcher, index)
    assert own > 0.9 and other == pytest.approx(float(unit([0.1, 1, 0.3, 0])[2]))
    mine, best = _scores(stranger, unit([0, 0, 0, 1]), matcher, index)
    assert mine == -1.0 and best == pytest.approx(0.0)
    listed.own, listed.other, listed.tracks = own, other, {1}
    lines = report([listed, stranger], 0.8, "current")
    assert lines[0] == "### Diagnosis: current"
    assert "1 of 1 (quality-weighted: 0" in lines[2]
    assert lines[-1].startswith("| WL-1 | 1 |")


def test_the_diagnosis_judges_a_template_at_its_coherence_bin() -> None:
    from tools.bench.walkthrough import sealed_bins
    from tools.bench.walkthrough_diagnose import _note_gap

    why = "threshold 0.8301: calibrated ..., by coherence 0.000:0.8301 0.935:0.8211 0.985:0.8093"
    bins = sealed_bins(why, None)
    assert bins == ((0.0, 0.8301), (0.935, 0.8211), (0.985, 0.8093))
    assert sealed_bins(why, 0.815) == ((0.0, 0.8301), (0.935, 0.8211), (0.985, 0.815))
    assert sealed_bins("threshold 0.8301: explicit policy value", None) is None
    entries = [
        Entry(f"WL-{i}", "wanted", None, unit(np.eye(4)[i].tolist())[None]) for i in range(3)
    ]
    matcher = Matcher(entries, 0.8301, by_coherence=bins)
    index = {e.subject_ref: i for i, e in enumerate(entries)}
    listed = walker("WL-1")
    _note_gap(listed, (0.815, 0.3), 0.99, matcher, index)  # passes 0.8093, not 0.8301
    assert listed.gap == pytest.approx(0.815 - 0.8093, abs=1e-6)
    assert listed.gap_threshold == pytest.approx(0.8093)
    _note_gap(listed, (0.82, 0.3), 0.90, matcher, index)  # higher score, stricter bin: worse gap
    assert listed.gap == pytest.approx(0.815 - 0.8093, abs=1e-6)
    assert listed.other_gap == pytest.approx(0.3 - 0.8093, abs=1e-6)
    lines = report([listed], 0.8301, "current")
    assert "the threshold for its coherence: 1;" in lines[2]
    assert "| +0.006 | 0.990 | 0.8093 |" in lines[-1]
