"""The estimator API every model follows (scikit-learn / implicit conventions).

- Hyper-parameters only in ``__init__``; ``fit(data, items=None) -> self``; learned state ends in ``_``.
- ``recommend(user, k, exclude_seen=True, candidates=None)`` returns item ids and scores;
  ``recommend_batch`` does the same for many users; ``similar_items(item, k)`` for item pages.
- Calling before ``fit`` raises :class:`NotFittedError` with a clear message.

Models score from a user's *interaction row* (a sparse vector over items), not from a stored
user index, so a user's newest events can be folded in at serving time without retraining:
item-based models multiply the row by their item-item matrix; factor models solve for a user
vector from it.

Recency: beside the row, scoring may take the row's *ranks* — a sparse matrix of the same shape
whose entry for an item is its position from the user's newest item (1 = newest), see
:func:`recency_ranks`. Models with a ``recency_tau`` hyper-parameter weight each row entry by
``exp(-(rank - 1) / recency_tau)`` (:func:`recency_weighted`), so recent taste counts more.
``fit`` keeps the ranks of the training rows (``user_ranks_``); :meth:`Recommender.ranks_for` and
:meth:`Recommender.user_ranks` give them for stored users (the latter with fold-in items as the
newest). Rows scored without ranks are not weighted: every entry counts fully.

Negative feedback (negative weights, see :mod:`attune.recommend.signals`) is handled per family:
item-based and content models score with the *signed* row, so the neighbours of a disliked item
are pushed down; factor models (ALS, BPR) learn and fold in from positive entries only;
popularity counts only positives (or subtracts them when ``weighted``). Whatever the family, an
item with a negative net weight in a user's row is never recommended to that user, even with
``exclude_seen=False``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from attune.errors import NotFound, ValidationFailed
from attune.recommend.data import Interactions

#: Item attributes as stored in the catalog: item_id -> {attribute: value}.
ItemAttributes = Mapping[str, Mapping[str, Any]]


class NotFittedError(ValidationFailed):
    """A model was used before ``fit``."""


class UnknownItem(NotFound):
    """An item id the model has never seen (asked for its similar items)."""


class Recommender(ABC):
    """Base class: id mapping, seen-item exclusion, candidate restriction and top-k."""

    #: Short name used by the CLI, the registry and responses.
    name: ClassVar[str] = "base"
    #: True when scores depend on the user's history (False for popularity).
    personalized: ClassVar[bool] = True
    #: True when ``fit`` adds catalog items without interactions to the vocabulary (cold items).
    uses_item_attributes: ClassVar[bool] = False

    # -- subclass hooks ----------------------------------------------------
    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        """Learn from the user × item ``matrix`` (summed signed weights; may hold explicit zeros)."""

    @abstractmethod
    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        """Dense scores (len(rows) × n_items) for users given by their interaction rows.

        ``ranks`` (same shape as ``rows``, or None when the order is unknown) are the recency
        ranks of the row entries; models without recency weighting ignore them.
        """

    def _similar(self, index: int) -> np.ndarray:
        """Similarity of item ``index`` to every item (dense, -inf for "not similar")."""
        raise ValidationFailed(f"the {self.name} model has no notion of item similarity")

    # -- parameters --------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """The hyper-parameter names ``__init__`` accepts."""
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters this model was built with (scikit-learn style).

        A model saved before a hyper-parameter existed reports that parameter's default.
        """
        params = inspect.signature(type(self).__init__).parameters
        return {p: getattr(self, p, params[p].default) for p in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting -----------------------------------------------------------
    def fit(self, data: Interactions, items: ItemAttributes | None = None) -> Self:
        """Learn from ``data`` (and the catalog's item attributes, for models that use them)."""
        data = check_interactions(data)
        if self.uses_item_attributes and items:
            data = with_catalog_items(data, items)
        user_items = data.matrix(binary=False)
        if not (user_items.data > 0).any():
            raise ValidationFailed(
                "cannot train: no user has a positive interaction (all weights are zero or negative)"
            )
        self._reset_caches()
        self.user_ids_ = data.user_ids
        self.item_ids_ = data.item_ids
        self.user_index_ = {str(u): i for i, u in enumerate(data.user_ids)}
        self.item_index_ = {str(t): i for i, t in enumerate(data.item_ids)}
        self._fit(user_items, data, items)
        self.user_ranks_ = recency_ranks(data)
        # Set last: is_fitted is true only once the model is complete.
        self.user_items_ = user_items
        return self

    def _reset_caches(self) -> None:
        """Drop anything derived lazily from a previous fit."""

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run."""
        return hasattr(self, "user_items_")

    @property
    def n_items(self) -> int:
        """Number of items the model scores."""
        self._check_fitted()
        return len(self.item_ids_)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"the {self.name} model is not trained yet: call fit() first")

    # -- rows --------------------------------------------------------------
    def user_row(self, user_id: str, extra_items: Sequence[str] | Mapping[str, float] = ()) -> sp.csr_matrix:
        """The interaction row of ``user_id`` (empty when unknown) plus ``extra_items`` (fold-in).

        ``extra_items`` are the user's newest events: a sequence of item ids (weight 1 each) or a
        mapping item id -> weight (negative for dislikes). Unknown item ids are ignored.
        """
        self._check_fitted()
        index = self.user_index_.get(user_id)
        if index is not None:
            row = self.user_items_[index]
        else:
            row = sp.csr_matrix((1, len(self.item_ids_)), dtype=np.float32)
        weights = extra_items if isinstance(extra_items, Mapping) else dict.fromkeys(extra_items, 1.0)
        known = [(self.item_index_[i], float(w)) for i, w in weights.items() if i in self.item_index_]
        if known:
            cols = np.fromiter((c for c, _ in known), dtype=np.int64, count=len(known))
            vals = np.fromiter((w for _, w in known), dtype=np.float32, count=len(known))
            fresh = sp.csr_matrix((vals, (np.zeros(len(known), dtype=np.int64), cols)), shape=row.shape)
            row = (row + fresh).tocsr()
        return row

    def rows_for(self, user_ids: Sequence[str]) -> sp.csr_matrix:
        """The stacked interaction rows of ``user_ids`` (empty rows for unknown users)."""
        self._check_fitted()
        return self._stack(self.user_items_, user_ids)

    def ranks_for(self, user_ids: Sequence[str]) -> sp.csr_matrix | None:
        """The stacked recency ranks of ``user_ids``' stored rows (None for models saved without them)."""
        self._check_fitted()
        ranks = getattr(self, "user_ranks_", None)
        return None if ranks is None else self._stack(ranks, user_ids)

    def user_ranks(
        self, user_id: str, extra_items: Sequence[str] | Mapping[str, float] = ()
    ) -> sp.csr_matrix | None:
        """Recency ranks of :meth:`user_row` (same arguments): ``extra_items`` are the newest events,
        in time order with the newest last (a mapping's insertion order); an item both stored and
        fresh takes its fresh position. None for models saved without ranks.
        """
        self._check_fitted()
        stored_all = getattr(self, "user_ranks_", None)
        if stored_all is None:
            return None
        index = self.user_index_.get(user_id)
        fresh = [self.item_index_[i] for i in extra_items if i in self.item_index_]
        newest_first = list(dict.fromkeys(reversed(fresh)))
        if index is not None:
            stored = stored_all[index]
            taken = set(newest_first)
            older = [
                int(c) for c in stored.indices[np.argsort(stored.data, kind="stable")] if int(c) not in taken
            ]
            newest_first += older
        cols = np.asarray(newest_first, dtype=np.int64)
        vals = np.arange(1, len(cols) + 1, dtype=np.float32)
        return sp.csr_matrix(
            (vals, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, len(self.item_ids_))
        )

    def _stack(self, matrix: sp.csr_matrix, user_ids: Sequence[str]) -> sp.csr_matrix:
        """Rows of a per-user ``matrix`` for ``user_ids`` (empty rows for unknown users)."""
        indices = np.array([self.user_index_.get(u, -1) for u in user_ids], dtype=np.int64)
        known = indices >= 0
        picked = matrix[np.where(known, indices, 0)]
        # Unknown users get empty rows: drop the entries borrowed from row 0 (explicit zeros
        # would count as "seen").
        keep = np.repeat(known, np.diff(picked.indptr))
        indptr = np.r_[0, np.cumsum(np.diff(picked.indptr) * known)]
        return sp.csr_matrix((picked.data[keep], picked.indices[keep], indptr), shape=picked.shape)

    # -- recommending --------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
        extra_items: Sequence[str] | Mapping[str, float] = (),
    ) -> tuple[list[str], np.ndarray]:
        """Top-``k`` item ids and scores for ``user_id`` (unknown users get an empty history).

        ``extra_items`` are folded in as the user's newest events (newest last).
        """
        ids, scores = self.recommend_rows(
            self.user_row(user_id, extra_items),
            k,
            exclude_seen=exclude_seen,
            candidates=candidates,
            ranks=self.user_ranks(user_id, extra_items),
        )
        return ids[0], scores[0][: len(ids[0])]

    def recommend_batch(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-``k`` for many users at once (one matrix product instead of a loop).

        Rows of the score array are padded with -inf where a user has fewer than ``k`` items.
        """
        return self.recommend_rows(
            self.rows_for(user_ids),
            k,
            exclude_seen=exclude_seen,
            candidates=candidates,
            ranks=self.ranks_for(user_ids),
        )

    def recommend_rows(
        self,
        rows: sp.csr_matrix,
        k: int,
        exclude_seen: bool = True,
        candidates: Sequence[str] | None = None,
        ranks: sp.csr_matrix | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-``k`` for users given by interaction rows (and, optionally, their recency ranks)."""
        self._check_fitted()
        rows, ranks = self._checked_rows(rows, ranks)
        if candidates is None and self._use_ann():
            return self._ann_recommend(rows, k, exclude_seen, ranks)
        scores = np.asarray(self._score(rows, ranks), dtype=np.float64)
        scores[blocked_entries(rows, exclude_seen)] = -np.inf
        if candidates is not None:
            allowed = np.zeros(len(self.item_ids_), dtype=bool)
            allowed[[self.item_index_[c] for c in candidates if c in self.item_index_]] = True
            scores[:, ~allowed] = -np.inf
        return top_k(scores, k, self.item_ids_)

    def score_rows(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        """Raw dense scores for interaction rows, without exclusions (for blending and features).

        ``ranks`` are the rows' recency ranks (:meth:`ranks_for`, :meth:`user_ranks`); without
        them a recency-weighted model weighs every entry fully.
        """
        self._check_fitted()
        rows, ranks = self._checked_rows(rows, ranks)
        return np.asarray(self._score(rows, ranks), dtype=np.float64)

    def _checked_rows(
        self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        rows = sp.csr_matrix(rows, dtype=np.float32)
        if rows.shape[1] != len(self.item_ids_):
            raise ValidationFailed(
                f"interaction rows have {rows.shape[1]} columns; the model has {len(self.item_ids_)} items"
            )
        if ranks is not None:
            ranks = sp.csr_matrix(ranks, dtype=np.float32)
            if ranks.shape != rows.shape:
                raise ValidationFailed(
                    f"ranks: shape {ranks.shape} differs from the interaction rows' {rows.shape}"
                )
        return rows, ranks

    def similar_items(self, item_id: str, k: int = 10) -> tuple[list[str], np.ndarray]:
        """The ``k`` items most similar to ``item_id`` (itself excluded), best first."""
        self._check_fitted()
        index = self.item_index_.get(item_id)
        if index is None:
            raise UnknownItem(f"item {item_id!r} is unknown to the {self.name} model")
        if self._use_ann():
            return self._ann_similar(index, k)
        scores = np.asarray(self._similar(index), dtype=np.float64).reshape(1, -1).copy()
        scores[0, index] = -np.inf
        ids, best = top_k(scores, k, self.item_ids_)
        return ids[0], best[0][: len(ids[0])]

    # -- approximate nearest neighbours (overridden by vector models) ---------
    def _use_ann(self) -> bool:
        return False

    def _ann_recommend(
        self, rows: sp.csr_matrix, k: int, exclude_seen: bool, ranks: sp.csr_matrix | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        raise NotImplementedError

    def _ann_similar(self, index: int, k: int) -> tuple[list[str], np.ndarray]:
        raise NotImplementedError


def blocked_entries(rows: sp.csr_matrix, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) pairs never to recommend: seen items (if asked) and negatively rated ones.

    "Seen" is the row's structure, not its values, so an item whose weights cancel out to zero
    still counts as seen.
    """
    coo = rows.tocoo()
    mask = np.ones(len(coo.data), dtype=bool) if exclude_seen else coo.data < 0
    return coo.row[mask], coo.col[mask]


def recency_ranks(data: Interactions) -> sp.csr_matrix:
    """Per user, each item's position from their newest item (1 = newest), by its latest interaction.

    Aligned with ``data.matrix()``: one entry per (user, item) pair. Ties in time keep the input
    order (the later row counts as newer), so the ranks are deterministic.
    """
    n = len(data)
    if n == 0:
        return sp.csr_matrix((data.n_users, data.n_items), dtype=np.float32)
    # Newest first within each user; the first occurrence of a (user, item) pair is its latest.
    order = np.lexsort((-np.arange(n), -data.timestamps, data.users))
    users, items = data.users[order], data.items[order]
    pair = users.astype(np.int64) * data.n_items + items
    _, first = np.unique(pair, return_index=True)
    first = np.sort(first)  # back to (user, newest first) order
    users, items = users[first], items[first]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    ranks = (np.arange(len(users)) - np.repeat(starts, counts) + 1).astype(np.float32)
    return sp.csr_matrix((ranks, (users, items)), shape=(data.n_users, data.n_items), dtype=np.float32)


def recency_weighted(rows: sp.csr_matrix, ranks: sp.csr_matrix | None, tau: float | None) -> sp.csr_matrix:
    """``rows`` with each entry times ``exp(-(rank - 1) / tau)``; entries without a rank unchanged.

    No weighting when ``tau`` is None or the order is unknown (``ranks`` None).
    """
    if tau is None or ranks is None:
        return rows
    decay = sp.csr_matrix(ranks, dtype=np.float32, copy=True)
    decay.data = (np.exp(-(decay.data - 1.0) / float(tau)) - 1.0).astype(np.float32)
    return sp.csr_matrix(rows + rows.multiply(decay), dtype=np.float32)


def check_recency_tau(tau: float | None) -> None:
    """Refuse a recency time constant that is not a positive number (None = off)."""
    if tau is not None and not (isinstance(tau, int | float) and np.isfinite(tau) and tau > 0):
        raise ValidationFailed(
            f"recency_tau: must be a positive number of items (or None for off), got {tau!r}"
        )


def positive_part(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Only the positive entries of ``matrix`` (negatives and explicit zeros dropped)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[out.data < 0] = 0.0
    out.eliminate_zeros()
    return out


def signed_binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """+1 for positive entries, -1 for negative ones (zeros dropped)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = np.sign(out.data).astype(np.float32)
    out.eliminate_zeros()
    return out


def check_interactions(data: Interactions) -> Interactions:
    """Refuse data no model can learn from, with a message naming the problem."""
    if not isinstance(data, Interactions):
        raise ValidationFailed(f"expected Interactions, got {type(data).__name__}")
    if len(data) == 0:
        raise ValidationFailed("cannot train on an empty interaction set")
    bad_weights = ~np.isfinite(data.weights)
    if bad_weights.any():
        first = int(np.flatnonzero(bad_weights)[0])
        raise ValidationFailed(
            f"weights: {int(bad_weights.sum())} interaction(s) have a NaN or infinite weight "
            f"(first at row {first}: user {str(data.user_ids[data.users[first]])!r}, "
            f"item {str(data.item_ids[data.items[first]])!r})"
        )
    bad_times = ~np.isfinite(data.timestamps)
    if bad_times.any():
        first = int(np.flatnonzero(bad_times)[0])
        raise ValidationFailed(
            f"timestamps: {int(bad_times.sum())} interaction(s) have a NaN or infinite timestamp (first at row {first})"
        )
    return data


def with_catalog_items(data: Interactions, items: ItemAttributes) -> Interactions:
    """``data`` with catalog items that have no interactions appended to the item vocabulary.

    Appending keeps every existing item index valid, so the interaction arrays are unchanged.
    """
    known = set(data.item_ids.tolist())
    extra = sorted(str(i) for i in items if str(i) not in known)
    if not extra:
        return data
    vocab = np.concatenate([data.item_ids.astype(object), np.array(extra, dtype=object)]).astype(str)
    return Interactions(data.users, data.items, data.timestamps, data.weights, data.user_ids, vocab)


def top_k(scores: np.ndarray, k: int, item_ids: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
    """Best ``k`` columns per row (excluding -inf), as ids and scores, best first.

    Ties keep the lower column index first, so results are deterministic.
    """
    k = min(k, scores.shape[1])
    if k <= 0:
        return [[] for _ in range(scores.shape[0])], np.zeros((scores.shape[0], 0))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=-1)
    best = np.take_along_axis(part, order, axis=1)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    ids = [
        [str(item_ids[j]) for j, s in zip(row, srow, strict=True) if np.isfinite(s)]
        for row, srow in zip(best, best_scores, strict=True)
    ]
    return ids, best_scores
