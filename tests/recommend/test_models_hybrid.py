"""Weighted hybrid (weights fitted on an inner split) and the LightGBM re-ranker."""

from __future__ import annotations

import numpy as np
import pytest

from attune.recommend.data import Interactions
from attune.recommend.models import EASE, LearnedReranker, WeightedHybrid
from attune.recommend.models import inner as inner_module
from attune.recommend.models.inner import ndcg_batch
from attune.recommend.models.synthetic import clustered_catalog


def test_hybrid_weights_favour_the_component_that_validates_best() -> None:
    data = clustered_catalog(n_users=120, n_items=120, per_user=10)
    model = WeightedHybrid(components=["popular", "itemknn"]).fit(data)
    assert model.weights_["itemknn"] > 0
    assert model.weights_.get("popular", 0.0) <= model.weights_["itemknn"]
    assert model.validation_ndcg_ > 0.2
    ids, _ = model.recommend("u0003", k=5)
    assert all(int(i[1:]) % 6 == 3 for i in ids)


def test_hybrid_search_only_sees_the_data_given_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    data = clustered_catalog(n_users=60, n_items=60, per_user=8)
    seen_sizes = []
    original = inner_module.temporal_holdout

    def spy(d, fraction):
        seen_sizes.append(len(d))
        return original(d, fraction)

    monkeypatch.setattr(inner_module, "temporal_holdout", spy)
    train = data.subset(np.arange(len(data)) % 5 != 0)
    WeightedHybrid(components=["popular", "ease"]).fit(train)
    assert seen_sizes == [len(train)]


def test_fixed_weights_skip_the_search_and_blend_standardized_scores() -> None:
    data = clustered_catalog(n_users=60, n_items=60, per_user=8)
    only_ease = WeightedHybrid(components={"ease": {"l2": 5.0}, "popular": {}}, weights={"ease": 1.0}).fit(
        data
    )
    assert set(only_ease.components_) == {"ease"}  # zero-weight components are dropped
    reference = EASE(l2=5.0).fit(data)
    assert only_ease.recommend("u0007", k=5)[0] == reference.recommend("u0007", k=5)[0]


def test_ndcg_batch_agrees_with_the_evaluation_metric() -> None:
    import scipy.sparse as sp

    from attune.evaluation.metrics import ndcg_at_k

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(30, 25))
    relevant = sp.csr_matrix((rng.random((30, 25)) < 0.15).astype(np.float32))
    expected = []
    for r in range(30):
        truth = set(relevant[r].indices.tolist())
        if truth:
            expected.append(ndcg_at_k(list(np.argsort(-scores[r], kind="stable")), truth, 10))
    assert ndcg_batch(scores, relevant, 10) == pytest.approx(np.mean(expected))


def planted() -> tuple[Interactions, dict[str, dict[str, object]]]:
    """Each user's latest items are "fresh" ones; popularity and co-occurrence do not tell.

    "n" items have skewed popularity, so some are rarer than the fresh ones and popularity is no
    proxy for freshness; one fresh item per user is early, so fresh items are not cold in the
    inner training split either. Only the ``fresh`` attribute separates what comes next.
    """
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, 31)
    users, items, times = [], [], []
    for u in range(80):
        for i in rng.choice(30, size=10, replace=False, p=popularity / popularity.sum()):
            users.append(f"u{u}"), items.append(f"n{i:02d}"), times.append(rng.uniform(0, 100))
        for n, i in enumerate(rng.choice(10, size=3, replace=False)):
            (
                users.append(f"u{u}"),
                items.append(f"f{i}"),
                times.append(rng.uniform(0, 100) if n == 0 else rng.uniform(200, 300)),
            )
    attributes = {f"n{i:02d}": {"fresh": False} for i in range(30)} | {
        f"f{i}": {"fresh": True} for i in range(10)
    }
    return Interactions.from_arrays(users, items, times), attributes


def test_reranker_learns_a_planted_feature_the_components_miss() -> None:
    data, attributes = planted()
    components = {"popular": {}, "itemknn": {"k": 20}}
    hybrid = WeightedHybrid(components=components).fit(data, items=attributes)
    ranker = LearnedReranker(components=components, n_candidates=40, n_estimators=50, min_child_samples=5)
    ranker.fit(data, items=attributes)
    assert "attr_fresh" in ranker.feature_names()
    users = [f"u{u}" for u in range(80)]
    ranked, _ = ranker.recommend_batch(users, k=3)
    blended, _ = hybrid.recommend_batch(users, k=3)
    fresh_share = np.mean([i.startswith("f") for ids in ranked for i in ids])
    assert fresh_share > 0.95
    assert np.mean([i.startswith("f") for ids in blended for i in ids]) < 0.5
    blind = LearnedReranker(
        components=components,
        n_candidates=40,
        n_estimators=50,
        min_child_samples=5,
        use_item_attributes=False,
    ).fit(data, items=attributes)
    assert np.mean([i.startswith("f") for ids in blind.recommend_batch(users, k=3)[0] for i in ids]) < 0.5


def test_reranker_ranks_only_candidates_and_folds_in() -> None:
    data = clustered_catalog(n_users=120, n_items=120, per_user=10)
    model = LearnedReranker(components=["ease", "popular"], n_candidates=10, n_estimators=30).fit(data)
    scores = model.score_rows(model.rows_for(["u0001"]))[0]
    assert 10 <= np.isfinite(scores).sum() <= 20  # the union of two top-10 lists
    ids, _ = model.recommend("newcomer", k=5, extra_items=["i00005", "i00011", "i00017"])
    assert all(int(i[1:]) % 6 == 5 for i in ids)
