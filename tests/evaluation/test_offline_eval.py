"""Scoring a fitted model under the protocol: seen items never ranked, means over test users."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attune.errors import ValidationFailed
from attune.evaluation.offline import evaluate_model, parse_ks, relevant_items
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.recommend.models import make_model


def chain() -> Interactions:
    """Users u0..u4 saw a, b, then c (their test item); user x saw c, then z (its test item).

    Training popularity is a=5, b=5, c=1, z=0, and seen items are never ranked, so popularity
    ranks [c, z] for u0..u4 and [a, b, z] for x: every metric is known exactly.
    """
    users, items, times = [], [], []
    for u in range(5):
        for t, item in enumerate(["a", "b", "c"]):
            users.append(f"u{u}")
            items.append(item)
            times.append(t)
    users += ["x", "x"]
    items += ["c", "z"]
    times += [0, 1]
    return Interactions.from_arrays(users, items, times)


def test_known_values_with_seen_items_excluded() -> None:
    train, test = temporal_holdout(chain())
    assert relevant_items(test) == {**{f"u{u}": {"c"} for u in range(5)}, "x": {"z"}}
    result = evaluate_model(make_model("popular").fit(train), test, ks=(1, 2, 3))
    assert result.n_users == 6 and result.ks == (1, 2, 3)
    assert result.lists[result.user_ids.index("u0")] == ["c", "z"]  # a and b are seen
    assert result.lists[result.user_ids.index("x")][2] == "z"  # c is seen
    assert math.isclose(result.get("hit_rate", 1), 5 / 6)
    assert math.isclose(result.get("recall", 2), 5 / 6)
    assert math.isclose(result.get("precision", 2), 5 / 6 / 2)
    assert math.isclose(result.get("mrr", 3), (5 + 1 / 3) / 6)
    assert math.isclose(result.get("ndcg", 3), (5 + 1 / math.log2(4)) / 6)


def test_a_user_sample_bounds_the_work() -> None:
    rng = np.random.default_rng(0)
    data = Interactions.from_arrays(rng.integers(0, 50, 600), rng.integers(0, 30, 600), rng.random(600))
    train, test = temporal_holdout(data)
    model = make_model("popular").fit(train)
    sampled = evaluate_model(model, test, ks=(10,), max_users=10, seed=3)
    assert sampled.n_users == 10 and len(sampled.lists) == 10
    assert evaluate_model(model, test, ks=(10,), max_users=10, seed=3).user_ids == sampled.user_ids


@pytest.mark.parametrize(("text", "expected"), [("5,10,20", (5, 10, 20)), ("20, 5,5", (5, 20)), ([3], (3,))])
def test_parse_ks(text: str, expected: tuple[int, ...]) -> None:
    assert parse_ks(text) == expected


@pytest.mark.parametrize("text", ["", "0", "ten", "5,-1", "5000"])
def test_bad_ks_are_refused(text: str) -> None:
    with pytest.raises(ValidationFailed, match="k: "):
        parse_ks(text)
