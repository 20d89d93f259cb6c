"""The estimator API every model follows (scikit-learn / implicit conventions).

- Hyper-parameters only in ``__init__``; ``fit(data) -> self``; learned state ends in ``_``.
- ``recommend(user, k, exclude_seen=True, candidates=None)`` returns item ids and scores;
  ``recommend_batch`` does the same for many users.
- Calling before ``fit`` raises :class:`NotFittedError` with a clear message.

Models score from a user's *interaction row* (a sparse vector over items), not from a stored
user index, so a user's newest events can be folded in at serving time without retraining:
item-based models multiply the row by their item-item matrix; factor models solve for a user
vector from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions


class NotFittedError(ValidationFailed):
    """A model was used before ``fit``."""


class Recommender(ABC):
    """Base class: id mapping, seen-item exclusion, candidate restriction and top-k."""

    #: Short name used by the CLI, the registry and responses.
    name: ClassVar[str] = "base"
    #: True when scores depend on the user's history (False for popularity).
    personalized: ClassVar[bool] = True

    # -- subclass hooks ----------------------------------------------------
    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix, data: Interactions) -> None:
        """Learn from the user × item ``matrix`` (weights already applied)."""

    @abstractmethod
    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        """Dense scores (len(rows) × n_items) for users given by their interaction rows."""

    # -- public API --------------------------------------------------------
    def fit(self, data: Interactions) -> Self:
        """Learn from ``data``; returns ``self``."""
        if len(data) == 0:
            raise ValidationFailed("cannot train on an empty interaction set")
        self.user_ids_ = data.user_ids
        self.item_ids_ = data.item_ids
        self.user_index_ = {u: i for i, u in enumerate(data.user_ids)}
        self.item_index_ = {t: i for i, t in enumerate(data.item_ids)}
        self.user_items_ = data.matrix(binary=False)
        self._fit(self.user_items_, data)
        return self

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return hasattr(self, "user_items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"the {self.name} model is not trained yet: call fit() first")

    def user_row(self, user_id: str, extra_items: Sequence[str] = ()) -> sp.csr_matrix:
        """The interaction row of ``user_id`` (empty when unknown) plus ``extra_items`` (fold-in)."""
        self._check_fitted()
        index = self.user_index_.get(user_id)
        row = self.user_items_[index] if index is not None else sp.csr_matrix((1, len(self.item_ids_)), dtype=np.float32)
        known = [self.item_index_[i] for i in extra_items if i in self.item_index_]
        if known:
            fresh = sp.csr_matrix(
                (np.ones(len(known), dtype=np.float32), (np.zeros(len(known), dtype=np.int64), known)),
                shape=row.shape,
            )
            row = (row + fresh).tocsr()
        return row

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
        extra_items: Sequence[str] = (),
    ) -> tuple[list[str], np.ndarray]:
        """Top-``k`` item ids and scores for ``user_id`` (unknown users get an empty history)."""
        ids, scores = self.recommend_rows(
            self.user_row(user_id, extra_items), k, exclude_seen=exclude_seen, candidates=candidates
        )
        return ids[0], scores[0]

    def recommend_batch(
        self, user_ids: Sequence[str], k: int = 10, exclude_seen: bool = True
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-``k`` for many users at once (one matrix product instead of a loop)."""
        self._check_fitted()
        indices = [self.user_index_.get(u) for u in user_ids]
        rows = sp.vstack(
            [self.user_items_[i] if i is not None else sp.csr_matrix((1, len(self.item_ids_))) for i in indices]
        ).tocsr()
        return self.recommend_rows(rows, k, exclude_seen=exclude_seen)

    def recommend_rows(
        self,
        rows: sp.csr_matrix,
        k: int,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-``k`` for users given by interaction rows."""
        self._check_fitted()
        scores = np.asarray(self._score(rows), dtype=np.float64)
        if exclude_seen:
            seen_r, seen_c = rows.nonzero()
            scores[seen_r, seen_c] = -np.inf
        if candidates is not None:
            allowed = np.zeros(len(self.item_ids_), dtype=bool)
            allowed[[self.item_index_[c] for c in candidates if c in self.item_index_]] = True
            scores[:, ~allowed] = -np.inf
        return top_k(scores, k, self.item_ids_)


def top_k(scores: np.ndarray, k: int, item_ids: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
    """Best ``k`` columns per row (excluding -inf), as ids and scores, best first."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return [[] for _ in range(scores.shape[0])], np.zeros((scores.shape[0], 0))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    ids = [[str(item_ids[j]) for j, s in zip(row, srow, strict=True) if np.isfinite(s)] for row, srow in zip(best, best_scores, strict=True)]
    return ids, best_scores
