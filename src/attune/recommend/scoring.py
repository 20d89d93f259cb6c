"""Per-request scoring of one user against the promoted model, without per-request set-up.

:class:`ServingModel` wraps a loaded bundle with what serving reuses across requests: item
vectors as contiguous float32 (one matrix-vector product per request), unit vectors for item
similarity, index arrays of unavailable items and of each category (per catalog generation),
an approximate-nearest-neighbour index above the model's threshold, and per-thread score
buffers. What depends on one person (their seen items as indices, their user vector, how they
are served) is computed once per person and model version and kept on the cached
:class:`~attune.recommend.usercache.UserState`.

How a person is served (``UserView.mode``):

- ``model`` — trained user, nothing new since training: their stored row, no fold-in;
- ``fold-in`` — trained user with newer events, or a new user with at least
  ``fold_in_min_items`` items the model knows: the user vector is solved from the row;
- ``session`` — a new user with fewer known items: item-to-item from those first events
  (sum of item similarities);
- ``content`` — a user whose items the model has never seen (new items): content similarity;
- ``cold`` — no events at all: the popularity chain of :mod:`attune.recommend.coldstart`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.catalogview import CatalogSnapshot
from attune.recommend.coldstart import ColdStartConfig, GroupPopularity
from attune.recommend.models.ann import VectorModel
from attune.recommend.signals import DEFAULT_EVENT_WEIGHTS
from attune.recommend.usercache import UserState
from attune.training.artifacts import ModelBundle

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class UserView:
    """How one person is served by one model version (see the module docstring)."""

    mode: str
    seen: np.ndarray  # model indices of every item the person touched
    sources: np.ndarray  # model indices explanations may cite (newest last)
    vector: np.ndarray | None = None  # query vector (vector models)
    row: sp.csr_matrix | None = None  # interaction row (other models)


def event_weight(kind: str, value: float | None, weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> float:
    """Fold-in weight of one event (ratings scaled around the neutral 2.5 of a 1-5 scale)."""
    if kind == "rating" and value is not None:
        return weights.get("rating", 3.0) * (float(value) - 2.5) / 2.5
    return float(weights.get(kind, 1.0))


class ServingModel:
    """A promoted bundle prepared for fast per-user scoring."""

    def __init__(
        self,
        bundle: ModelBundle,
        data_to: float | None = None,
        *,
        fold_in_min_items: int = 3,
        cold_start: ColdStartConfig | None = None,
    ) -> None:
        model = bundle.model
        self.bundle = bundle
        self.model = model
        self.name = bundle.name
        self.version = bundle.version
        self.label = f"{bundle.name}:{bundle.version}"
        self.data_to = data_to
        self.fold_in_min_items = fold_in_min_items
        self.personalized = bool(model.personalized)
        self.item_ids: list[str] = [str(i) for i in model.item_ids_]
        self.item_index: dict[str, int] = model.item_index_
        self.n_items = len(self.item_ids)
        self.vectors: np.ndarray | None = None
        self.unit: np.ndarray | None = None
        self.use_ann = False
        if isinstance(model, VectorModel):
            self.vectors = np.ascontiguousarray(model._item_vectors(), dtype=np.float32)
            self.unit = np.ascontiguousarray(model._unit_vectors(), dtype=np.float32)
            self.use_ann = model._use_ann()
            if self.use_ann:  # build both graphs now (in the loader thread), not in a request
                model._index("score")
                model._index("similar")
        self.groups = GroupPopularity.of_model(model, cold_start or ColdStartConfig())
        self._local = threading.local()
        self._per_catalog: dict[Any, Any] = {}
        self._similarity_ok = True

    # -- per-person ----------------------------------------------------------------------
    def view(self, state: UserState) -> UserView:
        """How ``state`` is served by this model (computed once per person and version)."""
        cached = state.derived.get(self.label)
        if cached is None:
            cached = self._build_view(state)
            state.derived[self.label] = cached
        return cached

    def _build_view(self, state: UserState) -> UserView:
        index = self.item_index
        seen = np.fromiter((index[i] for i in state.items if i in index), dtype=np.int64)
        model = self.model
        trained = state.key in model.user_index_
        fresh = state.items_since(self.data_to) if trained else list(state.interactions)
        fresh_known = [e for e in fresh if e.item_id in index]
        known_items = list(dict.fromkeys(e.item_id for e in fresh_known))
        liked = [index[i] for i in known_items]
        sources = np.array(liked[-50:] if not trained else [index[i] for i in state.items if i in index][-50:], dtype=np.int64)
        if not self.personalized:
            return UserView("cold" if not state.items else "content", seen, sources)
        if trained and not fresh_known:
            mode, extras = "model", None
        elif trained or len(known_items) >= self.fold_in_min_items:
            mode = "fold-in"
            extras: dict[str, float] | None = {}
            for e in fresh_known:
                extras[e.item_id] = extras.get(e.item_id, 0.0) + event_weight(e.type, e.value)
        elif known_items:
            mode, extras = "session", None
        else:
            return UserView("content" if state.items else "cold", seen, sources)
        if mode == "session":
            vector = self._session_vector(liked)
            if vector is None:  # no notion of item similarity: fold the few events in instead
                mode, extras = "fold-in", {i: 1.0 for i in known_items}
            else:
                return UserView(mode, seen, sources, vector=vector)
        row = model.user_row(state.key, extras or ())
        if self.vectors is not None:
            vector = np.asarray(model._user_vectors(row), dtype=np.float32).reshape(-1)
            return UserView(mode, seen, sources, vector=np.ascontiguousarray(vector))
        return UserView(mode, seen, sources, row=row)

    def _session_vector(self, liked: Sequence[int]) -> np.ndarray | None:
        if self.unit is not None:
            return np.ascontiguousarray(self.unit[list(liked)].sum(axis=0), dtype=np.float32)
        return None if not self._has_similarity() else np.asarray(liked, dtype=np.int64)

    def _has_similarity(self) -> bool:
        if self._similarity_ok:
            try:
                self.model._similar(0)
            except ValidationFailed:
                self._similarity_ok = False
            except Exception:  # noqa: BLE001 - any model that cannot answer is "no similarity"
                self._similarity_ok = False
        return self._similarity_ok

    # -- scores --------------------------------------------------------------------------
    def _buffer(self) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = np.empty(self.n_items, dtype=np.float32)
            self._local.buf = buf
        return buf

    def scores(self, view: UserView) -> np.ndarray:
        """Raw scores of every item for ``view`` in this thread's reused buffer."""
        buf = self._buffer()
        if view.vector is not None and view.vector.dtype == np.float32:
            matrix = self.unit if view.mode == "session" else self.vectors
            assert matrix is not None
            np.dot(matrix, view.vector, out=buf)
        elif view.mode == "session":  # similarity-based model without vectors
            buf[:] = 0.0
            for j in view.vector if view.vector is not None else ():
                buf += np.asarray(self.model._similar(int(j)), dtype=np.float32)
            buf[~np.isfinite(buf)] = -np.inf
        else:
            buf[:] = self.model.score_rows(view.row)[0]
        return buf

    def similarity_scores(self, item: int) -> np.ndarray:
        """Similarity of item ``item`` to every item, in this thread's buffer."""
        buf = self._buffer()
        if self.unit is not None:
            np.dot(self.unit, self.unit[item], out=buf)
        else:
            buf[:] = np.asarray(self.model._similar(item), dtype=np.float32)
        return buf

    def similarity_matrix(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        """Item-item similarities (len(rows) × len(cols)); ``None`` when the model has none."""
        if len(rows) == 0 or len(cols) == 0:
            return np.zeros((len(rows), len(cols)), dtype=np.float32)
        if self.unit is not None:
            return self.unit[rows] @ self.unit[cols].T
        if not self._has_similarity():
            return None
        return np.stack([np.asarray(self.model._similar(int(r)), dtype=np.float32)[cols] for r in rows])

    # -- catalog-dependent index arrays ----------------------------------------------------
    def unavailable(self, catalog: CatalogSnapshot) -> np.ndarray:
        """Model indices of unavailable items (cached per catalog generation)."""
        key = ("unavailable", catalog.generation)
        found = self._per_catalog.get(key)
        if found is None:
            found = np.array(sorted(self.item_index[i] for i in catalog.unavailable if i in self.item_index), dtype=np.int64)
            self._remember(key, found)
        return found

    def in_categories(self, catalog: CatalogSnapshot, wanted: frozenset[str]) -> np.ndarray:
        """Boolean mask of items in any of ``wanted`` (cached per catalog generation)."""
        key = ("categories", catalog.generation, wanted)
        found = self._per_catalog.get(key)
        if found is None:
            found = np.zeros(self.n_items, dtype=bool)
            for item_id, cats in catalog.categories.items():
                j = self.item_index.get(item_id)
                if j is not None and not wanted.isdisjoint(cats):
                    found[j] = True
            self._remember(key, found)
        return found

    def _remember(self, key: Any, value: Any) -> None:
        if len(self._per_catalog) > 256:
            self._per_catalog.clear()
        self._per_catalog[key] = value

    def indices(self, item_ids: Sequence[str] | frozenset[str]) -> np.ndarray:
        """Model indices of the ids it knows."""
        return np.fromiter((self.item_index[i] for i in item_ids if i in self.item_index), dtype=np.int64)


def top_indices(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` best finite scores, best first (ties: lower index first)."""
    n = len(scores)
    count = min(count, n)
    if count <= 0:
        return _EMPTY
    part = np.argpartition(scores, n - count)[n - count :]
    part = part[np.lexsort((part, -scores[part]))]
    return part[np.isfinite(scores[part])]
