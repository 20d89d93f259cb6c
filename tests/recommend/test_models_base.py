"""The estimator API on EASE, with checkerboard data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from attune.recommend.data import Interactions
from attune.recommend.models.base import NotFittedError, top_k
from attune.recommend.models.ease import EASE


def checkerboard(n_users: int = 40, n_items: int = 20, hold_out: int = 1) -> Interactions:
    """Even users like even items, odd users odd items; each user misses ``hold_out`` of theirs."""
    users, items = [], []
    for u in range(n_users):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for i in liked[: len(liked) - hold_out] if u < 2 else liked:
            users.append(f"u{u}")
            items.append(f"i{i:02d}")
    return Interactions.from_arrays(users, items, np.arange(len(users)))


def test_calling_before_fit_is_a_clear_error() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        EASE().recommend("u0")


def test_ease_recovers_the_checkerboard() -> None:
    model = EASE(l2=1.0).fit(checkerboard())
    ids, scores = model.recommend("u0", k=3)
    assert ids[0] == "i18"  # the one even item u0 has not seen
    assert all(int(i[1:]) % 2 == 0 for i in ids[:1])
    assert list(scores) == sorted(scores, reverse=True)
    odd_ids, _ = model.recommend("u1", k=1)
    assert odd_ids == ["i19"]


def test_seen_items_are_excluded_unless_asked() -> None:
    model = EASE(l2=1.0).fit(checkerboard())
    seen = {f"i{i:02d}" for i in range(0, 18, 2)}
    assert not seen & set(model.recommend("u0", k=10)[0])
    assert seen & set(model.recommend("u0", k=10, exclude_seen=False)[0])


def test_candidates_restrict_and_unknown_users_get_an_answer() -> None:
    model = EASE(l2=1.0).fit(checkerboard())
    ids, _ = model.recommend("u0", k=5, candidates=["i01", "i03", "nope"])
    assert set(ids) == {"i01", "i03"}
    ids, _ = model.recommend("stranger", k=2, extra_items=["i00", "i02"])  # folded-in history
    assert all(int(i[1:]) % 2 == 0 for i in ids)


def test_batch_matches_single() -> None:
    model = EASE(l2=1.0).fit(checkerboard())
    batch_ids, batch_scores = model.recommend_batch(["u0", "u1", "stranger"], k=4)
    for user, ids, scores in zip(["u0", "u1", "stranger"], batch_ids, batch_scores, strict=True):
        single_ids, single_scores = model.recommend(user, k=4)
        assert ids == single_ids
        np.testing.assert_allclose(scores[: len(ids)], single_scores[: len(ids)])


def test_top_k_drops_excluded_items_and_orders_by_score() -> None:
    scores = np.array([[0.1, -np.inf, 0.9, 0.5]])
    ids, best = top_k(scores, 4, np.array(["a", "b", "c", "d"]))
    assert ids == [["c", "d", "a"]]
    assert best[0][0] == 0.9
