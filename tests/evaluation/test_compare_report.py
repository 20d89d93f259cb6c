"""Comparing configurations on one split, and the HTML/JSON report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from attune.errors import ValidationFailed
from attune.evaluation.compare import ModelSpec, compare
from attune.evaluation.report import write_report
from attune.recommend.data import Interactions

SPECS = [ModelSpec("popular", "popular"), ModelSpec("ease λ=10", "ease", {"l2": 10.0})]


def checkerboard(n_users: int = 40, n_items: int = 20, per_user: int = 8) -> Interactions:
    """Users interact with items of their own parity only (a known answer)."""
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for u in range(n_users):
        own = [i for i in range(n_items) if i % 2 == u % 2]
        for t, i in enumerate(rng.permutation(own)[:per_user]):
            users.append(f"u{u}")
            items.append(f"i{int(i):02d}")
            times.append(t * 1000 + u)  # interleaved: a time cut keeps every user's history
    return Interactions.from_arrays(users, items, times)


@pytest.mark.parametrize("split", ["holdout", "global", "kfold"])
def test_the_planted_structure_beats_popularity_on_every_split(split: str) -> None:
    result = compare(SPECS, checkerboard(), split=split, ks=(5, 10))
    popular, ease = result.results
    assert popular.error is None and ease.error is None
    assert ease.metrics["ndcg@10"] > popular.metrics["ndcg@10"]
    assert set(ease.metrics) == {
        f"{m}@{k}" for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate") for k in (5, 10)
    }
    assert set(ease.beyond) == {"5", "10"} and 0 < ease.beyond["10"]["coverage"] <= 1
    assert sum(ease.popularity_histogram) == pytest.approx(1.0)
    assert len(result.folds) == (5 if split == "kfold" else 1)


def test_holdout_gives_the_known_answer() -> None:
    ease = compare(SPECS[1:], checkerboard(), split="holdout", ks=(10,)).results[0]
    # One held-out item per user, always among the 3 unseen items of the user's parity.
    assert ease.metrics["recall@10"] == 1.0 and ease.metrics["hit_rate@10"] == 1.0


def test_a_failing_configuration_does_not_lose_the_others() -> None:
    result = compare([ModelSpec("bad", "ease", {"l2": -1.0}), SPECS[0]], checkerboard(), ks=(10,))
    bad, popular = result.results
    assert "l2: must be positive" in bad.error and bad.metrics == {}
    assert popular.error is None and popular.metrics["recall@10"] > 0


def test_an_unknown_split_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="split: unknown split 'random'"):
        compare(SPECS, checkerboard(), split="random")


def test_the_report_holds_the_same_numbers_in_html_and_json(tmp_path: Path) -> None:
    comparison = compare(
        [*SPECS, ModelSpec("bad", "ease", {"l2": -1.0})], checkerboard(), split="holdout", ks=(5, 10, 20)
    )
    html_path, json_path = write_report(comparison, tmp_path / "out")
    figures = json.loads(json_path.read_text())
    html = html_path.read_text()
    assert figures["split"] == "holdout" and figures["ks"] == [5, 10, 20]
    for result in figures["results"]:
        if result["error"]:
            assert result["error"] in html
            continue
        for key in ("ndcg@10", "recall@20", "map@5"):
            assert f"{result['metrics'][key]:.4f}" in html
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == 2
    assert "ease λ=10" in html and "<script" not in html
