"""Beyond-accuracy metrics: known values and properties that hold for any lists."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.evaluation.beyond import (
    average_popularity,
    beyond_accuracy,
    catalog_coverage,
    intra_list_diversity,
    item_vectors,
    mean_intra_list_diversity,
    novelty,
    popularity_percentiles,
    self_information,
)
from attune.recommend.data import Interactions

N_ITEMS = 12
item_lists = st.lists(st.lists(st.integers(0, N_ITEMS - 1), max_size=6, unique=True), max_size=8)
popularities = st.lists(st.integers(0, 50), min_size=N_ITEMS, max_size=N_ITEMS).map(np.array)


def random_vectors(seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 30, 120), rng.integers(0, N_ITEMS, 120)
    return item_vectors(
        Interactions.from_arrays([f"u{u}" for u in users], [f"i{i:02d}" for i in items], np.arange(120))
    )


def test_known_values() -> None:
    assert catalog_coverage([[0, 1], [1, 2]], 10) == 0.3
    orthogonal = sp.csr_matrix(np.eye(3))
    assert intra_list_diversity([0, 1, 2], orthogonal) == 1.0
    same = sp.csr_matrix(np.ones((3, 4)) / 2.0)
    assert math.isclose(intra_list_diversity([0, 1, 2], same), 0.0, abs_tol=1e-9)
    assert intra_list_diversity([0], same) is None
    popularity = np.array([9, 0, 4])
    assert novelty([0], popularity, n_users=9) == 0.0  # an item everyone has carries no information
    assert math.isclose(novelty([1], popularity, n_users=9), math.log2(10))
    assert average_popularity([0, 2], popularity) == 6.5
    np.testing.assert_allclose(popularity_percentiles(popularity), [1.0, 0.0, 0.5])


@given(item_lists)
def test_coverage_is_a_share_and_grows_with_more_lists(lists: list[list[int]]) -> None:
    value = catalog_coverage(lists, N_ITEMS)
    assert 0.0 <= value <= 1.0
    assert catalog_coverage([*lists, list(range(N_ITEMS))], N_ITEMS) == 1.0
    assert catalog_coverage(lists + [[0]], N_ITEMS) >= value


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, N_ITEMS - 1), min_size=2, max_size=8, unique=True), st.integers(0, 1000))
def test_diversity_lies_in_zero_one_and_ignores_order(items: list[int], seed: int) -> None:
    vectors = random_vectors(seed)
    value = intra_list_diversity(items, vectors)
    assert value is not None and 0.0 <= value <= 1.0
    assert math.isclose(value, intra_list_diversity(list(reversed(items)), vectors), abs_tol=1e-9)


@settings(max_examples=30, deadline=None)
@given(item_lists, st.integers(0, 1000))
def test_mean_diversity_skips_short_lists(lists: list[list[int]], seed: int) -> None:
    value = mean_intra_list_diversity(lists, random_vectors(seed))
    if not any(len(items) >= 2 for items in lists):
        assert value is None
    else:
        assert value is not None and 0.0 <= value <= 1.0


@given(popularities, st.integers(1, N_ITEMS - 1))
def test_novelty_is_non_negative_and_falls_as_popularity_rises(popularity: np.ndarray, item: int) -> None:
    n_users = int(popularity.max()) + 1
    info = self_information(popularity, n_users)
    assert (info >= 0).all()
    order = np.argsort(popularity, kind="stable")
    assert (np.diff(info[order]) <= 1e-12).all()
    assert novelty([item], popularity, n_users) == info[item]


@given(popularities, st.lists(st.integers(0, N_ITEMS - 1), min_size=1, max_size=6))
def test_popularity_percentiles_are_ordered_shares(popularity: np.ndarray, items: list[int]) -> None:
    percentiles = popularity_percentiles(popularity)
    assert ((percentiles >= 0) & (percentiles <= 1)).all()
    hi, lo = int(np.argmax(popularity)), int(np.argmin(popularity))
    assert percentiles[hi] >= percentiles[lo]
    if popularity[hi] > popularity[lo]:
        assert percentiles[hi] > percentiles[lo]
    arp = average_popularity(items, popularity)
    assert popularity.min() <= arp <= popularity.max()


def test_beyond_accuracy_on_lists_of_ids() -> None:
    train = Interactions.from_arrays(["a", "a", "b", "c"], ["x", "y", "x", "x"], [1, 2, 3, 4])
    figures = beyond_accuracy([["x", "y"], ["y"], ["unknown"]], train)
    assert figures["coverage"] == 1.0
    assert figures["arp"] == (2.0 + 1.0) / 2  # mean of the list means: (3+1)/2, then 1
    assert figures["popularity_percentile"] == 0.5 * (0.5 + 0.0)
    assert 0.0 <= figures["diversity"] <= 1.0
