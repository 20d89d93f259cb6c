"""Validation carved from training data only: the inner split hybrids fit their weights on.

The inner split is the DESIGN.md per-user temporal holdout applied to the data handed to
``fit`` — so anything learned from it never sees the outer test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.recommend.models.base import recency_ranks


@dataclass
class InnerSplit:
    """Inner training data plus the validation users' rows and relevant items."""

    train: Interactions
    users: np.ndarray  #: validation user indices
    rows: sp.csr_matrix  #: their inner-training rows (signed weights)
    relevant: sp.csr_matrix  #: their validation items (binary)
    ranks: sp.csr_matrix | None = None  #: recency ranks of ``rows`` (1 = newest)


def inner_split(data: Interactions, fraction: float, max_users: int, seed: int = 0) -> InnerSplit:
    """Per-user temporal holdout of ``data``; validation users have at least one training item."""
    if not 0 < fraction < 1:
        raise ValidationFailed(f"validation_fraction: must be between 0 and 1, got {fraction}")
    train, valid = temporal_holdout(data, fraction)
    if len(train) == 0 or not (train.weights > 0).any():
        raise ValidationFailed(
            "too little data to carve a validation split: every user needs at least two interactions"
        )
    train_matrix = train.matrix(binary=False)
    valid_matrix = positive_valid(valid)
    has_history = np.diff(train_matrix.indptr) > 0
    has_target = np.diff(valid_matrix.indptr) > 0
    users = np.flatnonzero(has_history & has_target)
    if len(users) == 0:
        raise ValidationFailed(
            "too little data to carve a validation split: no user has both history and a later item"
        )
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    ranks = recency_ranks(train)[users]
    return InnerSplit(train, users, train_matrix[users], valid_matrix[users], ranks)


def positive_valid(valid: Interactions) -> sp.csr_matrix:
    """Validation items that count as relevant: positive net weight, as a binary matrix."""
    matrix = valid.matrix(binary=False)
    matrix.data = (matrix.data > 0).astype(np.float32)
    matrix.eliminate_zeros()
    return matrix


def ndcg_batch(scores: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> float:
    """Mean NDCG@k with binary gains (ideal DCG over min(k, |relevant|)), as in evaluation.metrics."""
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=-1)
    top = np.take_along_axis(top, order, axis=1)
    finite = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
    rel = relevant.tocsr()
    rel_keys = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(rel.indptr)) * n_items + rel.indices
    hits = np.isin(np.arange(n_rows, dtype=np.int64)[:, None] * n_items + top, rel_keys) & finite
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    n_rel = np.minimum(np.diff(rel.indptr), k)
    ideal = np.cumsum(discounts)[np.maximum(n_rel, 1) - 1]
    valid = n_rel > 0
    return float(np.mean(dcg[valid] / ideal[valid])) if valid.any() else 0.0


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row standardized scores, so models on different scales can be added."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 1e-12, std, 1.0)


def mask_rows(scores: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
    """``scores`` with every item present in ``rows`` set to -inf (seen items are never targets)."""
    out = scores.copy()
    coo = rows.tocoo()
    out[coo.row, coo.col] = -np.inf
    return out
