"""Ranking metrics at K with binary relevance, as the DESIGN.md protocol defines them.

``recommended`` is a ranked list of item indices, ``relevant`` the set of test items.
Recall@K = hits / min(K, |relevant|); NDCG@K uses binary gains and the ideal DCG of
min(K, |relevant|) hits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_DISCOUNTS = 1.0 / np.log2(np.arange(2, 2002))


def _hits(recommended: Sequence[int], relevant: set[int], k: int) -> np.ndarray:
    return np.fromiter((item in relevant for item in recommended[:k]), dtype=bool, count=min(k, len(recommended)))


def precision_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """Hits in the top ``k`` divided by ``k``."""
    return float(_hits(recommended, relevant, k).sum()) / k if k else 0.0


def recall_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """Hits in the top ``k`` divided by min(k, |relevant|)."""
    if not relevant:
        return 0.0
    return float(_hits(recommended, relevant, k).sum()) / min(k, len(relevant))


def ndcg_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """Normalized discounted cumulative gain with binary gains."""
    if not relevant:
        return 0.0
    hits = _hits(recommended, relevant, k)
    dcg = float(_DISCOUNTS[: len(hits)][hits].sum())
    ideal = float(_DISCOUNTS[: min(k, len(relevant))].sum())
    return dcg / ideal


def average_precision_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """Mean of precision at each hit position, over min(k, |relevant|)."""
    if not relevant:
        return 0.0
    hits = _hits(recommended, relevant, k)
    if not hits.any():
        return 0.0
    positions = np.flatnonzero(hits) + 1
    precisions = np.arange(1, len(positions) + 1) / positions
    return float(precisions.sum()) / min(k, len(relevant))


def reciprocal_rank_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """1 / rank of the first hit in the top ``k`` (0 when none)."""
    hits = _hits(recommended, relevant, k)
    first = np.flatnonzero(hits)
    return 1.0 / (first[0] + 1) if len(first) else 0.0


def hit_rate_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """1 when any relevant item is in the top ``k``."""
    return float(_hits(recommended, relevant, k).any())
