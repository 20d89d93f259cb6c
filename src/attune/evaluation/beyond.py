"""Beyond-accuracy metrics: catalog coverage, intra-list diversity, novelty, popularity bias.

Popularity is the number of distinct training users who interacted with an item. Lists are
sequences of item indices into the training vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from attune.recommend.data import Interactions

#: Lists used for intra-list diversity (pairwise similarities); a fixed sample keeps large
#: evaluations fast, and the mean of 2,000 lists is already stable to about ±0.01.
MAX_DIVERSITY_LISTS = 2000


def item_popularity(train: Interactions) -> np.ndarray:
    """Distinct users per item (indexed like ``train.item_ids``)."""
    return np.asarray(train.matrix(binary=True).sum(axis=0)).ravel()


def item_vectors(train: Interactions) -> sp.csr_matrix:
    """L2-normalized item × user interaction vectors (the rows' dot products are cosines)."""
    items = train.matrix(binary=True).T.tocsr().astype(np.float64)
    norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ items


def catalog_coverage(lists: Sequence[Sequence[int]], n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    if n_items <= 0:
        return 0.0
    shown = {int(i) for items in lists for i in items}
    return len(shown) / n_items


def intra_list_diversity(items: Sequence[int], vectors: sp.csr_matrix) -> float | None:
    """1 - mean pairwise cosine similarity of the list's items; None for lists under two items.

    With non-negative interaction vectors every cosine lies in [0, 1], so the diversity does too.
    """
    index = np.asarray(items, dtype=np.int64)
    n = len(index)
    if n < 2:
        return None
    block = vectors[index]
    sims = (block @ block.T).toarray()
    pair_sum = (sims.sum() - np.trace(sims)) / 2
    mean_sim = pair_sum / (n * (n - 1) / 2)
    return float(np.clip(1.0 - mean_sim, 0.0, 1.0))


def mean_intra_list_diversity(
    lists: Sequence[Sequence[int]],
    vectors: sp.csr_matrix,
    max_lists: int = MAX_DIVERSITY_LISTS,
    seed: int = 0,
) -> float | None:
    """Mean diversity over (a fixed sample of) lists with at least two items."""
    candidates = [items for items in lists if len(items) >= 2]
    if len(candidates) > max_lists:
        picks = np.random.default_rng(seed).choice(len(candidates), size=max_lists, replace=False)
        candidates = [candidates[i] for i in picks]
    values = [intra_list_diversity(items, vectors) for items in candidates]
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def self_information(popularity: np.ndarray, n_users: int) -> np.ndarray:
    """-log2 of each item's (add-one smoothed) share of users: 0 for an item everyone has."""
    return -np.log2((np.asarray(popularity, dtype=np.float64) + 1.0) / (n_users + 1.0))


def novelty(items: Sequence[int], popularity: np.ndarray, n_users: int) -> float | None:
    """Mean self-information of the list's items (higher = less popular items)."""
    if len(items) == 0:
        return None
    return float(self_information(popularity, n_users)[np.asarray(items, dtype=np.int64)].mean())


def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (ties share their average rank; 1 = most popular)."""
    n = len(popularity)
    if n == 1:
        return np.ones(1)
    return (rankdata(popularity, method="average") - 1.0) / (n - 1.0)


def average_popularity(items: Sequence[int], popularity: np.ndarray) -> float | None:
    """ARP: the mean popularity (user count) of the list's items."""
    if len(items) == 0:
        return None
    return float(np.asarray(popularity, dtype=np.float64)[np.asarray(items, dtype=np.int64)].mean())


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def beyond_accuracy(lists: Sequence[Sequence[str]], train: Interactions) -> dict[str, float | None]:
    """Coverage, diversity, novelty, ARP and popularity percentile of lists of item ids."""
    index = {str(item): i for i, item in enumerate(train.item_ids)}
    indexed = [[index[i] for i in items if i in index] for items in lists]
    popularity = item_popularity(train)
    percentiles = popularity_percentiles(popularity) if len(popularity) else popularity
    n_users = len(np.unique(train.users)) if len(train) else 0
    return {
        "coverage": catalog_coverage(indexed, train.n_items),
        "diversity": mean_intra_list_diversity(indexed, item_vectors(train)),
        "novelty": _mean([novelty(items, popularity, n_users) for items in indexed]),
        "arp": _mean([average_popularity(items, popularity) for items in indexed]),
        "popularity_percentile": _mean(
            [float(percentiles[items].mean()) if items else None for items in indexed]
        ),
    }
