"""Item-based k-nearest neighbours: shrunk cosine similarity, top-k neighbours kept sparse."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import (
    ItemAttributes,
    Recommender,
    check_recency_tau,
    positive_part,
    recency_weighted,
    signed_binary,
)

#: Dense similarity blocks are at most this many cells (keeps memory flat on big catalogs).
BLOCK_CELLS = 20_000_000


class ItemKNN(Recommender):
    """``sim(i, j) = |U_i ∩ U_j| / (|U_i|^½ |U_j|^½ + shrinkage)``, each item keeping its ``k`` best.

    Similarities come from positive interactions (binary). A user's score for item ``j`` is
    ``Σ_i x_i sim(i, j)`` over the items ``i`` in their row with ``x_i`` = +1 for positive and -1
    for negative feedback, so the neighbours of a disliked item are pushed down. With
    ``recency_tau`` each ``x_i`` is weighted ``exp(-position_from_newest / recency_tau)``.
    """

    name = "itemknn"

    def __init__(self, k: int = 100, shrinkage: float = 10.0, recency_tau: float | None = None) -> None:
        self.k = k
        self.shrinkage = shrinkage
        self.recency_tau = recency_tau

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        if int(self.k) < 1:
            raise ValidationFailed(f"k: must be at least 1, got {self.k}")
        if float(self.shrinkage) < 0:
            raise ValidationFailed(f"shrinkage: must not be negative, got {self.shrinkage}")
        check_recency_tau(self.recency_tau)
        binary = positive_part(matrix)
        binary.data[:] = 1.0
        by_item = binary.T.tocsr()
        norms = np.sqrt(np.asarray(by_item.sum(axis=1)).ravel())
        n_items = by_item.shape[0]
        k = min(int(self.k), max(n_items - 1, 1))
        block = max(1, BLOCK_CELLS // max(n_items, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n_items, block):
            stop = min(start + block, n_items)
            co = (by_item[start:stop] @ by_item.T).toarray()
            sim = co / (norms[start:stop, None] * norms[None, :] + float(self.shrinkage) + 1e-12)
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
            best = (
                np.argpartition(-sim, k - 1, axis=1)[:, :k]
                if k < n_items
                else np.tile(np.arange(n_items), (stop - start, 1))
            )
            best_sims = np.take_along_axis(sim, best, axis=1)
            keep = best_sims > 0
            rows.append(np.repeat(np.arange(start, stop), keep.sum(axis=1)))
            cols.append(best[keep])
            vals.append(best_sims[keep])
        self.similarity_ = sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
        )

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        weighted = recency_weighted(signed_binary(rows), ranks, getattr(self, "recency_tau", None))
        return np.asarray((weighted @ self.similarity_).toarray())

    def _similar(self, index: int) -> np.ndarray:
        out = np.full(self.similarity_.shape[1], -np.inf)
        row = self.similarity_[index]
        out[row.indices] = row.data
        return out
