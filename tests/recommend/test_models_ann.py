"""The usearch ANN path for large catalogs, exercised on a small one with a low threshold."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from attune.recommend.models import ALS, BPR, ContentBased
from attune.recommend.models.synthetic import clustered_catalog

DATA = clustered_catalog(n_users=300, n_items=600, n_clusters=6, per_user=12)
ITEMS = {
    f"i{i:05d}": {
        "genres": [f"g{i % 6}"],
        "title": f"story of group {i % 6} number {i}",
        "year": 1990 + i % 30,
    }
    for i in range(600)
}


def models(threshold: int) -> list:
    return [
        ALS(factors=16, iterations=8, ann_threshold=threshold),
        BPR(factors=16, iterations=30, ann_threshold=threshold),
        ContentBased(ann_threshold=threshold, ann_dimensions=32),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_ann_top_k_agrees_with_exact_scoring(index: int) -> None:
    exact = models(10**9)[index].fit(DATA, items=ITEMS)
    approx = models(100)[index].fit(DATA, items=ITEMS)
    assert not exact._use_ann() and approx._use_ann()
    users = [f"u{u:04d}" for u in range(0, 300, 15)]
    exact_ids, _ = exact.recommend_batch(users, k=10)
    approx_ids, approx_scores = approx.recommend_batch(users, k=10)
    group = {u: int(u[1:]) % 6 for u in users}
    for user, ids, scores in zip(users, approx_ids, approx_scores, strict=True):
        assert len(ids) == 10
        assert all(int(i[1:]) % 6 == group[user] for i in ids), (user, ids)  # right taste group
        assert not set(ids) & set(DATA.item_ids[DATA.items[DATA.users == list(DATA.user_ids).index(user)]])
        assert list(scores) == sorted(scores, reverse=True)
    if index < 2:  # the factor models' ANN answers are the exact ones, near enough
        overlap = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids, strict=True)])
        assert overlap >= 0.9


def test_ann_similar_items_and_fold_in() -> None:
    model = ALS(factors=16, iterations=8, ann_threshold=100).fit(DATA)
    ids, scores = model.similar_items("i00004", k=5)
    assert len(ids) == 5 and "i00004" not in ids and all(int(i[1:]) % 6 == 4 for i in ids)
    assert list(scores) == sorted(scores, reverse=True) and scores[0] <= 1 + 1e-5  # cosines
    new_ids, _ = model.recommend("newcomer", k=5, extra_items=["i00002", "i00008", "i00014"])
    assert all(int(i[1:]) % 6 == 2 for i in new_ids)
    assert not {"i00002", "i00008", "i00014"} & set(new_ids)


def test_ann_batch_matches_single() -> None:
    model = ALS(factors=16, iterations=8, ann_threshold=100).fit(DATA)
    users = ["u0001", "u0002", "stranger"]
    batch, _ = model.recommend_batch(users, k=5)
    assert batch == [model.recommend(u, k=5)[0] for u in users]


def test_ann_index_is_rebuilt_after_unpickling() -> None:
    model = ALS(factors=16, iterations=8, ann_threshold=100).fit(DATA)
    before = model.recommend("u0003", k=5)[0]
    clone = pickle.loads(pickle.dumps(model))
    assert "_ann_indexes" not in vars(clone)
    assert clone.recommend("u0003", k=5)[0] == before


def test_candidates_bypass_the_index() -> None:
    model = ALS(factors=16, iterations=8, ann_threshold=100).fit(DATA)
    ids, _ = model.recommend("u0000", k=3, candidates=["i00001", "i00006", "i00012"])
    assert set(ids) <= {"i00001", "i00006", "i00012"} and ids[0] in {"i00006", "i00012"}
