"""Popularity (counts, weights, time decay) and trending, with hand-computed answers."""

from __future__ import annotations

import numpy as np

from attune.recommend.data import Interactions
from attune.recommend.models import Popularity, Trending

DAY = 86_400.0


def test_counts_rank_items_and_nobody_gets_seen_items() -> None:
    data = Interactions.from_arrays(["a", "b", "c", "a", "b", "c"], ["x", "x", "x", "y", "y", "z"], range(6))
    model = Popularity().fit(data)
    np.testing.assert_array_equal(model.scores_, [3, 2, 1])
    assert model.recommend("stranger", k=3)[0] == ["x", "y", "z"]
    assert model.recommend("a", k=3)[0] == ["z"]
    assert not model.personalized


def test_weighted_popularity_subtracts_negative_feedback() -> None:
    data = Interactions.from_arrays(
        ["a", "b", "c", "d"], ["x", "x", "y", "x"], range(4), [1.0, 1.0, 1.0, -5.0]
    )
    assert Popularity().fit(data).recommend("new", k=2)[0] == ["x", "y"]  # counts positives only
    assert Popularity(weighted=True).fit(data).recommend("new", k=2)[0] == ["y", "x"]


def test_time_decay_prefers_recent_items() -> None:
    # "old" had 3 interactions 60 days ago; "new" has 2 today. Half-life 10 days: 3/64 < 2.
    times = [0.0, 0.0, 0.0, 60 * DAY, 60 * DAY]
    data = Interactions.from_arrays(["a", "b", "c", "d", "e"], ["old", "old", "old", "new", "new"], times)
    assert Popularity().fit(data).recommend("z", k=2)[0] == ["old", "new"]
    decayed = Popularity(half_life_days=10).fit(data)
    assert decayed.recommend("z", k=2)[0] == ["new", "old"]
    np.testing.assert_allclose(decayed.scores_[list(decayed.item_ids_).index("old")], 3 * 0.5**6, rtol=1e-6)


def test_trending_prefers_a_surge_over_a_steady_bestseller() -> None:
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for day in range(35):  # "steady": 10 a day for 35 days; "surge": 1 a day, then 12 a day this week
        for n in range(10):
            users.append(f"s{day}-{n}"), items.append("steady"), times.append(day * DAY + rng.uniform(0, DAY))
        for n in range(12 if day >= 28 else 1):
            users.append(f"t{day}-{n}"), items.append("surge"), times.append(day * DAY + rng.uniform(0, DAY))
    data = Interactions.from_arrays(users, items, times)
    assert Popularity().fit(data).recommend("x", k=1)[0] == ["steady"]
    trending = Trending(window_days=7, baseline_days=28).fit(data)
    assert trending.recommend("x", k=2)[0] == ["surge", "steady"]
    assert abs(trending.scores_[list(trending.item_ids_).index("steady")]) < 3


def test_similar_items_of_popularity_are_the_popular_items() -> None:
    data = Interactions.from_arrays(["a", "b", "c", "a"], ["x", "x", "y", "z"], range(4))
    ids, _ = Popularity().fit(data).similar_items("z", k=2)
    assert ids == ["x", "y"]
