"""ALS and BPR through implicit: fold-in, negatives, similarity, thread limits."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from attune.recommend.data import Interactions
from attune.recommend.models import ALS, BPR
from attune.recommend.models.synthetic import checkerboard, clustered_catalog


def test_als_fold_in_is_implicits_own_user_solve() -> None:
    data = clustered_catalog(n_users=60, n_items=60, per_user=6)
    model = ALS(factors=8, iterations=5, regularization=0.1, alpha=2.0).fit(data)
    rows = model.rows_for(["u0000", "u0001"])
    ours = model._user_vectors(rows)
    reference = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=2.0)
    reference.item_factors = model.model_.item_factors
    np.testing.assert_allclose(ours, reference.recalculate_user([0, 1], sp.csr_matrix(rows)), rtol=1e-5)


def test_als_scores_match_the_trained_user_factors_closely() -> None:
    # After training, folding a training user's own row back in gives (nearly) their learned vector.
    data = clustered_catalog(n_users=60, n_items=60, per_user=6)
    model = ALS(factors=8, iterations=30, regularization=0.1).fit(data)
    learned = model.model_.user_factors[:5] @ model.item_factors_.T
    folded = model.score_rows(model.user_items_[:5])
    assert np.corrcoef(learned.ravel(), folded.ravel())[0, 1] > 0.99


def test_negative_feedback_never_becomes_a_positive_for_factor_models() -> None:
    base = checkerboard()
    # Every even user "dislikes" i01: if negatives leaked in as positives, i01 would look even.
    dislikes = Interactions.from_arrays(
        [f"u{u:02d}" for u in range(0, 40, 2)], ["i01"] * 20, np.full(20, 1000.0), -np.ones(20)
    )
    merged = Interactions.from_arrays(
        np.r_[base.user_ids[base.users], dislikes.user_ids[dislikes.users]],
        np.r_[base.item_ids[base.items], dislikes.item_ids[dislikes.items]],
        np.r_[base.timestamps, dislikes.timestamps],
        np.r_[base.weights, dislikes.weights],
    )
    for model in (ALS(factors=4, iterations=10, regularization=0.01), BPR(factors=8, iterations=60)):
        model.fit(merged)
        ids, _ = model.similar_items("i01", k=3)
        assert all(int(i[1:]) % 2 == 1 for i in ids), (model.name, ids)
        assert "i01" not in model.recommend("u02", k=20, exclude_seen=False)[0]


def test_bpr_keeps_the_item_bias_in_scores() -> None:
    model = BPR(factors=8, iterations=40).fit(checkerboard())
    scores = model.score_rows(sp.csr_matrix((1, 20), dtype=np.float32))  # empty history
    np.testing.assert_allclose(scores[0], model.item_bias_, rtol=1e-6)


def test_bpr_with_a_user_who_liked_everything_terminates() -> None:
    data = Interactions.from_arrays(["all", "all", "all", "b"], ["x", "y", "z", "x"], range(4))
    model = BPR(factors=4, iterations=5).fit(data)
    assert model.recommend("b", k=2)[0] and model.recommend("all", k=2)[0] == []


def test_blas_threads_are_limited_while_implicit_trains(monkeypatch) -> None:
    from threadpoolctl import threadpool_info

    from attune.recommend.models import factors

    seen: list[int] = []
    original = factors.AlternatingLeastSquares.fit

    def spy(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(factors.AlternatingLeastSquares, "fit", spy)
    ALS(factors=4, iterations=2).fit(checkerboard())
    assert seen and set(seen) == {1}
