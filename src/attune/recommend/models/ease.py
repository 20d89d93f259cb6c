"""EASE (Steck, 2019): a closed-form item-item model, strong on implicit feedback."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import Recommender

#: Above this many items the dense item × item inverse no longer fits comfortably in memory.
MAX_ITEMS = 30_000


class EASE(Recommender):
    """``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``; scores are ``x · B``."""

    name = "ease"

    def __init__(self, l2: float = 250.0) -> None:
        self.l2 = l2

    def _fit(self, matrix: sp.csr_matrix, data: Interactions) -> None:
        n_items = matrix.shape[1]
        if n_items > MAX_ITEMS:
            raise ValidationFailed(f"EASE needs a dense {n_items}² matrix; use itemknn or als above {MAX_ITEMS} items")
        binary = matrix.copy()
        binary.data[:] = 1.0
        gram = (binary.T @ binary).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = inverse / (-np.diag(inverse))
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        binary = rows.copy()
        binary.data[:] = 1.0
        return np.asarray(binary @ self.weights_)
