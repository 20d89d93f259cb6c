"""Approximate nearest-neighbour top-k (usearch HNSW) for models with item vectors.

Above ``ann_threshold`` items, scoring every item for every request costs more than a graph
search; the index returns the best inner products directly. Indexes are built lazily on first
use (and dropped when pickled), so training stays fast and saved models stay portable.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import scipy.sparse as sp
from usearch.index import Index

from attune.recommend.models.base import Recommender, blocked_entries

#: Default catalog size above which vector models answer top-k from the ANN index.
ANN_THRESHOLD = 50_000


class ItemIndex:
    """An inner-product HNSW index over item vectors; keys are item indices."""

    def __init__(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size = vectors.shape[0]
        self.index = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", expansion_search=128)
        self.index.add(np.arange(self.size, dtype=np.uint64), vectors)

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, inner products) per query, best first; missing slots are -1 / -inf."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        count = max(1, min(count, self.size))
        matches = self.index.search(queries, count)
        if hasattr(matches, "counts"):
            counts = np.asarray(matches.counts).reshape(-1)
            keys = np.asarray(matches.keys, dtype=np.int64).reshape(len(queries), -1)
            distances = np.asarray(matches.distances, dtype=np.float64).reshape(len(queries), -1)
        else:  # one query: usearch answers with a flat Matches holding only the found slots
            found = len(matches.keys)
            counts = np.array([found])
            keys = np.zeros((1, count), dtype=np.int64)
            distances = np.ones((1, count))
            keys[0, :found] = matches.keys
            distances[0, :found] = matches.distances
        sims = 1.0 - distances
        missing = np.arange(keys.shape[1])[None, :] >= counts[:, None]
        keys[missing] = -1
        sims[missing] = -np.inf
        return keys, sims


class VectorModel(Recommender):
    """A model whose scores are inner products of user and item vectors.

    Subclasses set ``ann_threshold`` in ``__init__`` and implement :meth:`_user_vectors` and
    :meth:`_item_vectors`; scoring, similarity and the ANN path come from here.
    """

    ann_threshold: int

    def _user_vectors(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        raise NotImplementedError

    def user_vectors(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        """Query vectors for interaction rows (with their recency ranks when known), for serving."""
        self._check_fitted()
        rows, ranks = self._checked_rows(rows, ranks)
        return self._user_vectors(rows, ranks)

    def _item_vectors(self) -> np.ndarray:
        raise NotImplementedError

    def _similarity_vectors(self) -> np.ndarray:
        """Unit-length item vectors for item-item cosine similarity."""
        vectors = np.asarray(self._item_vectors(), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        # float64 so that a batch and a single row give the same ranking even for near-ties
        # (float32 gemm and gemv round differently).
        items = self.__dict__.get("_items64")
        if items is None:
            items = np.ascontiguousarray(self._item_vectors(), dtype=np.float64)
            self.__dict__["_items64"] = items
        return np.asarray(self._user_vectors(rows, ranks), dtype=np.float64) @ items.T

    def _similar(self, index: int) -> np.ndarray:
        unit = self._unit_vectors()
        return unit @ unit[index]

    def _reset_caches(self) -> None:
        for key in ("_ann_indexes", "_unit_cache", "_items64"):
            self.__dict__.pop(key, None)

    def _unit_vectors(self) -> np.ndarray:
        cached = self.__dict__.get("_unit_cache")
        if cached is None:
            cached = self._similarity_vectors()
            self.__dict__["_unit_cache"] = cached
        return cached

    # -- ANN -------------------------------------------------------------------
    def _use_ann(self) -> bool:
        return len(self.item_ids_) > self.ann_threshold

    def _index(self, kind: str) -> ItemIndex:
        lock = self.__dict__.setdefault("_ann_lock", threading.Lock())
        indexes = self.__dict__.setdefault("_ann_indexes", {})
        with lock:
            if kind not in indexes:
                vectors = self._item_vectors() if kind == "score" else self._unit_vectors()
                indexes[kind] = ItemIndex(vectors)
        return indexes[kind]

    def _ann_recommend(
        self, rows: sp.csr_matrix, k: int, exclude_seen: bool, ranks: sp.csr_matrix | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        blocked_r, blocked_c = blocked_entries(rows, exclude_seen)
        per_row = np.bincount(blocked_r, minlength=rows.shape[0])
        queries = self._user_vectors(rows, ranks)
        keys, sims = self._index("score").search(queries, k + int(per_row.max(initial=0)))
        blocked = set(zip(blocked_r.tolist(), blocked_c.tolist(), strict=True))
        ids: list[list[str]] = []
        scores = np.full((rows.shape[0], k), -np.inf)
        for r in range(rows.shape[0]):
            chosen = [
                (j, s) for j, s in zip(keys[r], sims[r], strict=True) if j >= 0 and (r, j) not in blocked
            ][:k]
            ids.append([str(self.item_ids_[j]) for j, _ in chosen])
            scores[r, : len(chosen)] = [s for _, s in chosen]
        return ids, scores

    def _ann_similar(self, index: int, k: int) -> tuple[list[str], np.ndarray]:
        unit = self._unit_vectors()
        keys, sims = self._index("similar").search(unit[index], k + 1)
        chosen = [(j, s) for j, s in zip(keys[0], sims[0], strict=True) if j >= 0 and j != index][:k]
        return [str(self.item_ids_[j]) for j, _ in chosen], np.array([s for _, s in chosen])

    def __getstate__(self) -> dict[str, Any]:
        # Indexes and locks are rebuilt on demand; neither pickles.
        return {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("_ann_lock", "_ann_indexes", "_unit_cache", "_items64")
        }
