"""EASE (Steck, 2019): a closed-form item-item model, strong on implicit feedback."""

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

#: Above this many items the dense item × item inverse no longer fits comfortably in memory.
MAX_ITEMS = 30_000


class EASE(Recommender):
    """``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``; scores are ``x · B``.

    ``X`` is the binary matrix of positive interactions; at scoring time ``x`` is the signed row
    (+1 positive, -1 negative feedback), so a dislike subtracts its item's weights. With
    ``recency_tau`` each entry of ``x`` is weighted ``exp(-position_from_newest / recency_tau)``.
    """

    name = "ease"

    def __init__(self, l2: float = 250.0, recency_tau: float | None = None) -> None:
        self.l2 = l2
        self.recency_tau = recency_tau

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        n_items = matrix.shape[1]
        if n_items > MAX_ITEMS:
            raise ValidationFailed(
                f"EASE needs a dense {n_items}² matrix; use itemknn or als above {MAX_ITEMS} items"
            )
        if float(self.l2) <= 0:
            raise ValidationFailed(f"l2: must be positive, got {self.l2}")
        check_recency_tau(self.recency_tau)
        binary = positive_part(matrix)
        binary.data[:] = 1.0
        gram = (binary.T @ binary).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += float(self.l2)
        inverse = np.linalg.inv(gram)
        weights = inverse / (-np.diag(inverse))
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        weighted = recency_weighted(signed_binary(rows), ranks, getattr(self, "recency_tau", None))
        return np.asarray(weighted @ self.weights_)

    def _similar(self, index: int) -> np.ndarray:
        return self.weights_[index].astype(np.float64)
