"""Splits: the per-user temporal holdout takes each user's latest 20% (at least one)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.evaluation.split import global_time_split, temporal_holdout, user_kfold
from attune.recommend.data import Interactions


def _data(counts: list[int], seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user, count in enumerate(counts):
        users += [user] * count
        items += list(rng.permutation(100)[:count])
        times += list(rng.uniform(0, 1000, count))
    return Interactions.from_arrays(users, items, times)


def test_holdout_takes_latest_fifth_per_user():
    data = Interactions.from_arrays(["a"] * 10 + ["b"], [str(i) for i in range(11)], list(range(10)) + [5])
    train, test = temporal_holdout(data)
    a = int(np.flatnonzero(data.user_ids == "a")[0])
    test_a = sorted(test.timestamps[test.users == a])
    assert test_a == [8.0, 9.0]
    assert all(train.timestamps[train.users == a] < 8)
    b = int(np.flatnonzero(data.user_ids == "b")[0])
    assert (test.users == b).sum() == 1 and (train.users == b).sum() == 0  # at least one in test


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=20), st.integers(0, 10_000))
def test_holdout_partitions_and_respects_time(counts, seed):
    data = _data(counts, seed)
    train, test = temporal_holdout(data)
    assert len(train) + len(test) == len(data)
    for raw_user, count in enumerate(counts):
        user = int(np.flatnonzero(data.user_ids == str(raw_user))[0])
        n_test = (test.users == user).sum()
        assert n_test == max(1, int(count * 0.2 + 1e-9))
        if (train.users == user).any():
            assert train.timestamps[train.users == user].max() <= test.timestamps[test.users == user].min()


def test_global_split_is_a_time_cut():
    data = _data([30] * 10)
    train, test = global_time_split(data)
    assert train.timestamps.max() <= test.timestamps.min()
    assert abs(len(test) / len(data) - 0.2) < 0.02


def test_kfold_tests_each_user_exactly_once():
    data = _data([10] * 25)
    folds = user_kfold(data, k=5, seed=1)
    tested = np.concatenate([np.unique(test.users) for _, test in folds])
    assert sorted(tested) == list(range(25))
    for train, test in folds:
        assert not set(np.unique(test.users)) - set(np.unique(train.users))  # 20% held out, 80% kept
