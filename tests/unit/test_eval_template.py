"""The template protocol's metric code (tools/evaluation/template.py) on small synthetic
embeddings whose scores can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.evaluation.embedding import PROFILES
from tools.evaluation.metrics import Searches
from tools.evaluation.report import render_template
from tools.evaluation.template import (
    TemplateResult,
    cluster_bootstrap_at_fpir,
    near_identities,
    subsets,
    summary,
    template,
    template_searches,
    without,
)
from tools.evaluation.template_run import KS, as_rows, from_embedded

E = np.eye(3)
U = np.array([0.6, 0.8, 0.0])  # nearer person 1's listed photo than person 0's
V = np.array([0.6, -0.8, 0.0])


def two_people() -> list[np.ndarray]:
    """Person 0: listed e0, other photos u and v (their mean is along e0). Person 1: listed
    e1, one other photo e1."""
    return [np.stack([E[0], U, V]), np.stack([E[1], E[1]])]


def test_a_template_is_the_renormalised_mean() -> None:
    assert template(np.stack([U, V])) == pytest.approx(E[0])
    assert np.linalg.norm(template(np.stack([E[0], E[1]]))) == pytest.approx(1.0)


def test_subsets_are_all_of_them_when_few_and_a_seeded_choice_when_many() -> None:
    rng = np.random.default_rng(0)
    assert subsets(3, 2, 10, rng) == [(0, 1), (0, 2), (1, 2)]
    assert subsets(1, 2, 10, rng) == []
    many = subsets(10, 3, 7, np.random.default_rng(1))
    assert len(set(many)) == 7 and all(len(s) == 3 for s in many)
    assert many == subsets(10, 3, 7, np.random.default_rng(1))


def test_single_photos_and_leave_one_out_scores() -> None:
    r = template_searches(two_people(), 1)
    # u: own 0.6 < 0.8 for person 1 (a miss at rank 1); v: own 0.6; person 1: own 1.
    assert r.searches.mated_score == pytest.approx([0.6, 0.6, 1.0])
    assert r.searches.mated_rank1.tolist() == [False, True, True]
    # The same searches against the list without their own entry.
    assert r.searches.nonmated_top == pytest.approx([0.8, -0.8, 0.0])
    assert r.mated_id.tolist() == r.nonmated_id.tolist() == [0, 0, 1]
    assert r.gallery_size == 2 and r.identities == 2


def test_two_photos_average_the_error_away() -> None:
    r = template_searches(two_people(), 2)
    # Only person 0 has two other photos: their template lies on e0.
    assert r.searches.mated_score == pytest.approx([1.0])
    assert r.searches.mated_rank1.tolist() == [True]
    assert r.searches.nonmated_top == pytest.approx([0.0])
    assert r.mated_id.tolist() == [0]


def test_min_others_measures_every_k_on_the_same_people() -> None:
    r = template_searches(two_people(), 1, min_others=2)
    assert set(r.mated_id.tolist()) == {0} and len(r.searches.mated_score) == 2
    capped = template_searches(two_people(), 1, photos=1)
    assert capped.searches.mated_score == pytest.approx([0.6, 1.0])  # only u of person 0


def synthetic(identities: int, per_id: int, seed: int) -> TemplateResult:
    """Mated scores ~ N(0.7, 0.1), non-mated ~ N(0.3, 0.1), ``per_id`` of each per identity."""
    rng = np.random.default_rng(seed)
    n = identities * per_id
    ids = np.repeat(np.arange(identities), per_id)
    return TemplateResult(
        1,
        Searches(rng.normal(0.7, 0.1, n), np.ones(n, bool), rng.normal(0.3, 0.1, n)),
        ids,
        ids,
        identities,
    )


def test_the_cluster_bootstrap_brackets_the_estimate() -> None:
    r = synthetic(200, 10, 0)
    threshold, fnir = cluster_bootstrap_at_fpir(r, 1e-2, reps=200)
    expected_fnir, expected_threshold = r.searches.at_fpir(1e-2)
    assert threshold.estimate == expected_threshold and fnir.estimate == expected_fnir
    assert threshold.low <= threshold.estimate <= threshold.high
    assert fnir.low <= fnir.estimate <= fnir.high
    assert threshold.high - threshold.low > 0


def test_one_identity_leaves_nothing_to_resample() -> None:
    r = synthetic(1, 500, 1)
    threshold, fnir = cluster_bootstrap_at_fpir(r, 1e-2, reps=50)
    assert threshold.low == threshold.estimate == threshold.high
    assert fnir.low == fnir.estimate == fnir.high


def test_the_summary_states_only_the_fpirs_the_searches_resolve() -> None:
    r = synthetic(50, 10, 2)  # 500 non-mated searches: 1e-2 yes, 1e-3 no
    s = summary(r, (1e-2, 1e-3), reps=20)
    assert list(s["points"]) == ["0.01"]  # type: ignore[call-overload]
    assert (s["mated_searches"], s["nonmated_searches"], s["identities"]) == (500, 500, 50)
    assert s["rank1"] == 1.0


def test_without_drops_only_the_non_mated_searches_of_those_people() -> None:
    r = without(template_searches(two_people(), 1), {0})
    assert r.searches.mated_score == pytest.approx([0.6, 0.6, 1.0])  # mated ones all stay
    assert r.searches.nonmated_top == pytest.approx([0.0]) and r.nonmated_id.tolist() == [1]


def test_near_duplicates_are_people_scoring_a_stranger_like_a_mate() -> None:
    # Median mated score of the searches that found their mate (v: 0.6, person 1: 1.0) is
    # 0.8; u's best stranger scores 0.8: person 0 is near a listed stranger.
    assert near_identities(template_searches(two_people(), 1)) == {0}
    assert near_identities(template_searches(two_people(), 2)) == set()


def test_name_duplicates_are_found_by_their_name_words() -> None:
    people = {"Choi_Sung-hong": ["a"], "Sung_Hong_Choi": ["b"], "Nan_Wang": ["c"], "X_Y": ["d"]}
    emb = {p: E[0] for p in "abcd"}
    del emb["d"]  # no face in the listed photo: the identity cannot be listed
    rows, duplicates = as_rows(people, emb)
    assert len(rows) == 3 and duplicates == {0, 1}


def test_make_evals_embeddings_render_the_template_table(tmp_path: Path) -> None:
    """``make eval``'s path: its embeddings (absolute paths, None without a face) through the
    protocol into the report's table and one DET plot per K."""
    rng = np.random.default_rng(3)
    lfw = tmp_path / "lfw"
    embedded: dict[str, dict[str, np.ndarray] | None] = {}
    for person in range(12):
        folder = lfw / f"P{person}"
        folder.mkdir(parents=True)
        centre = rng.normal(size=8)
        for n in range(1, 8):
            photo = folder / f"P{person}_{n:04d}.jpg"
            photo.write_bytes(b"")
            v = centre + 0.3 * rng.normal(size=8)
            embedded[str(photo)] = None if n == 7 else {p: v for p in PROFILES}
    results = from_embedded(lfw, embedded, bootstrap=10)
    for name in PROFILES:
        k3 = results[name]["all"][KS.index(3)]
        # 12 people, 5 other photos with a face: C(5, 3) = 10 subsets each.
        assert (k3["identities"], k3["mated_searches"], k3["gallery"]) == (12, 120, 12)
    doc = {"template": results, "bootstrap": 10, "seconds": 1.0, "load_average": (0, 0, 0)}
    render_template(json.loads(json.dumps(doc)), tmp_path)
    text = (tmp_path / "eval_template.md").read_text()
    assert "| accurate | clean | 3 | 12 | 12 | 120 / 120 |" in text
    assert all((tmp_path / f"eval_template_k{k}.png").stat().st_size > 1000 for k in KS)
