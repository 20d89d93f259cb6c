"""Splits: the per-user temporal holdout of DESIGN.md, a global time split, user k-fold."""

from __future__ import annotations

import numpy as np

from attune.recommend.data import Interactions


def temporal_holdout(data: Interactions, test_fraction: float = 0.2) -> tuple[Interactions, Interactions]:
    """Per user: interactions sorted by time; the last ``test_fraction`` (at least one) are test.

    Ties in time keep the input order (a stable sort), so the split is deterministic.
    """
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))
    users_sorted = data.users[order]
    starts = np.flatnonzero(np.r_[True, users_sorted[1:] != users_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    n_test = np.maximum(1, np.floor(counts * test_fraction + 1e-9).astype(int))
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    is_test_sorted = rank >= np.repeat(counts - n_test, counts)
    is_test = np.zeros(len(data), dtype=bool)
    is_test[order] = is_test_sorted
    return data.subset(~is_test), data.subset(is_test)


def global_time_split(data: Interactions, test_fraction: float = 0.2) -> tuple[Interactions, Interactions]:
    """Everything after the (1 - test_fraction) time quantile is test."""
    cutoff = np.quantile(data.timestamps, 1 - test_fraction)
    is_test = data.timestamps > cutoff
    return data.subset(~is_test), data.subset(is_test)


def user_kfold(data: Interactions, k: int = 5, seed: int = 0) -> list[tuple[Interactions, Interactions]]:
    """Users split into ``k`` folds; within each test fold the per-user temporal holdout applies,
    and the other folds' users train in full."""
    if k < 2:
        raise ValueError("k must be at least 2")
    rng = np.random.default_rng(seed)
    fold_of_user = rng.permutation(data.n_users) % k
    folds = []
    for fold in range(k):
        in_fold = fold_of_user[data.users] == fold
        fold_train, fold_test = temporal_holdout(data.subset(in_fold))
        train_mask = ~in_fold
        merged = Interactions(
            np.r_[data.users[train_mask], fold_train.users],
            np.r_[data.items[train_mask], fold_train.items],
            np.r_[data.timestamps[train_mask], fold_train.timestamps],
            np.r_[data.weights[train_mask], fold_train.weights],
            data.user_ids,
            data.item_ids,
        )
        folds.append((merged, fold_test))
    return folds
