"""Matrix factorization through the ``implicit`` library: ALS and BPR.

Both learn item vectors from the positive entries of the user × item matrix only (negative
feedback never becomes a positive). At scoring time a user's vector is computed from their
interaction row — for ALS the exact least-squares step with the item vectors fixed, for BPR
the mean of the row's item vectors — so new users and a user's newest events are folded in
without retraining. With ``recency_tau`` the row's entries are weighted
``exp(-position_from_newest / recency_tau)`` before the fold-in (confidences for ALS, the mean's
weights for BPR). ``num_threads=1`` makes training reproducible (the tuner uses it): with more
threads BPR's lock-free updates depend on scheduling.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from attune.recommend.data import Interactions
from attune.recommend.models.ann import ANN_THRESHOLD, VectorModel
from attune.recommend.models.base import ItemAttributes, check_recency_tau, positive_part, recency_weighted


class ALS(VectorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit.cpu.als``.

    Confidence of an observed pair is ``alpha × weight``. ``num_threads=0`` uses every core for
    implicit's own loops; BLAS is held to one thread meanwhile so the two do not oversubscribe.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 1.0,
        iterations: int = 15,
        alpha: float = 1.0,
        random_state: int = 0,
        num_threads: int = 0,
        ann_threshold: int = ANN_THRESHOLD,
        recency_tau: float | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.recency_tau = recency_tau
        self.random_state = random_state
        self.num_threads = num_threads
        self.ann_threshold = ann_threshold

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        check_recency_tau(self.recency_tau)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=self.random_state,
                num_threads=int(self.num_threads),
            )
            model.fit(positive_part(matrix), show_progress=False)
        _ = model.YtY  # cached now, so concurrent fold-ins only read it
        self.model_ = model
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _user_vectors(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        positives = recency_weighted(positive_part(rows), ranks, getattr(self, "recency_tau", None))
        if positives.shape[0] == 0:
            return np.zeros((0, self.item_factors_.shape[1]), dtype=np.float32)
        return np.atleast_2d(self.model_.recalculate_user(np.arange(positives.shape[0]), positives))

    def _item_vectors(self) -> np.ndarray:
        return self.item_factors_


class BPR(VectorModel):
    """Bayesian Personalized Ranking (Rendle et al. 2009) via ``implicit.cpu.bpr``.

    BPR has no closed-form fold-in; a user's vector is the weighted mean of the vectors of the
    items in their row (times ``fold_in_scale``), which on ML-100K ranks better than both
    BPR's own trained user vectors and an ALS-style least-squares fold-in. The learned item
    bias stays in the score.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.001,
        iterations: int = 150,
        fold_in_scale: float = 1.0,
        random_state: int = 0,
        num_threads: int = 0,
        ann_threshold: int = ANN_THRESHOLD,
        recency_tau: float | None = None,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.fold_in_scale = fold_in_scale
        self.recency_tau = recency_tau
        self.random_state = random_state
        self.num_threads = num_threads
        self.ann_threshold = ann_threshold

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        check_recency_tau(self.recency_tau)
        positives = positive_part(matrix)
        positives.data[:] = 1.0
        # A user who liked every item has no negative to sample: implicit would spin forever.
        full = np.diff(positives.indptr) >= positives.shape[1]
        if full.any():
            positives = sp.csr_matrix(sp.diags((~full).astype(np.float32)) @ positives)
            positives.eliminate_zeros()
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=int(self.factors),
                learning_rate=float(self.learning_rate),
                regularization=float(self.regularization),
                iterations=int(self.iterations),
                random_state=self.random_state,
                num_threads=int(self.num_threads),
            )
            if positives.nnz:
                model.fit(positives, show_progress=False)
                item_factors = np.asarray(model.item_factors, dtype=np.float32)
            else:
                item_factors = np.zeros((matrix.shape[1], int(self.factors) + 1), dtype=np.float32)
        # implicit appends the item bias as the last factor (users carry a constant 1 there).
        self.item_factors_ = np.ascontiguousarray(item_factors[:, :-1])
        self.item_bias_ = np.ascontiguousarray(item_factors[:, -1])

    def _user_vectors(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        positives = recency_weighted(positive_part(rows), ranks, getattr(self, "recency_tau", None))
        totals = np.asarray(positives.sum(axis=1)).reshape(-1, 1)
        factors = np.asarray(positives @ self.item_factors_) / np.maximum(totals, 1e-12)
        factors *= float(self.fold_in_scale)
        return np.hstack([factors, np.ones((factors.shape[0], 1), dtype=np.float32)]).astype(np.float32)

    def _item_vectors(self) -> np.ndarray:
        cached = self.__dict__.get("_with_bias")
        if cached is None:
            cached = np.hstack([self.item_factors_, self.item_bias_[:, None]])
            self.__dict__["_with_bias"] = cached
        return cached

    def _similarity_vectors(self) -> np.ndarray:
        # Similarity is about taste, not about how popular an item is: leave the bias out.
        norms = np.linalg.norm(self.item_factors_, axis=1, keepdims=True)
        return self.item_factors_ / np.maximum(norms, 1e-12)

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self.__dict__.pop("_with_bias", None)
