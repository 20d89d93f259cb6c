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

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.catalogview import CatalogSnapshot
from attune.recommend.coldstart import ColdStartConfig, GroupPopularity
from attune.recommend.filters import Filters
from attune.recommend.models.ann import ItemIndex, VectorModel
from attune.recommend.signals import DEFAULT_EVENT_WEIGHTS
from attune.recommend.usercache import UserState
from attune.training.artifacts import ModelBundle

_EMPTY = np.zeros(0, dtype=np.int64)
log = logging.getLogger(__name__)


def _restore_index(path: Path, size: int) -> ItemIndex | None:
    """A saved graph, memory-mapped; ``None`` when it cannot be read or does not fit."""
    from usearch.index import Index

    try:
        index = Index.restore(str(path), view=True)
    except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
        return None
    if index is None or len(index) != size:
        return None
    restored = ItemIndex.__new__(ItemIndex)
    restored.size = size
    restored.index = index
    return restored


@dataclass
class UserView:
    """How one person is served by one model version (see the module docstring)."""

    mode: str
    seen: np.ndarray  # model indices of every item the person touched
    sources: np.ndarray  # model indices explanations may cite (newest last)
    vector: np.ndarray | None = None  # query vector (vector models)
    row: sp.csr_matrix | None = None  # interaction row (other models)
    ranks: sp.csr_matrix | None = None  # recency ranks of ``row`` (recency-weighted models)


def event_weight(
    kind: str, value: float | None, weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS
) -> float:
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
        #: True once the ANN graphs are ready (see :meth:`build_ann`); exact scoring until then.
        self.use_ann = False
        self.wants_ann = False
        if isinstance(model, VectorModel):
            self.vectors = np.ascontiguousarray(model._item_vectors(), dtype=np.float32)
            self.unit = np.ascontiguousarray(model._unit_vectors(), dtype=np.float32)
            self.wants_ann = model._use_ann()
        self.groups = GroupPopularity.of_model(model, cold_start or ColdStartConfig())
        self._local = threading.local()
        self._per_catalog: dict[Any, Any] = {}
        self._similarity_ok = True

    def build_ann(self, cache_dir: Path | None = None, tag: str = "") -> None:
        """Build both HNSW graphs (scores, similarity), or load them from ``cache_dir``; then use them.

        Runs in the loader's background thread after the model is already serving (exactly,
        meanwhile): a 100,000-item graph takes tens of seconds to build on a busy machine, so
        the built graphs are saved beside the artifact and memory-mapped on later starts.
        """
        if not self.wants_ann or self.vectors is None or self.unit is None:
            return
        indexes = self.model.__dict__.setdefault("_ann_indexes", {})
        for kind, vectors in (("score", self.vectors), ("similar", self.unit)):
            path = cache_dir / f"serving-ann-{kind}-{tag}.usearch" if cache_dir is not None else None
            index = _restore_index(path, len(vectors)) if path is not None and path.is_file() else None
            if index is None:
                index = ItemIndex(vectors)
                if path is not None:
                    try:
                        index.index.save(str(path))
                    except Exception:  # noqa: BLE001 - a read-only artifact directory: no cache
                        log.warning("could not save the ANN graph to %s", path)
            indexes[kind] = index
        self.use_ann = True

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
        sources = np.array(
            liked[-50:] if not trained else [index[i] for i in state.items if i in index][-50:],
            dtype=np.int64,
        )
        if not self.personalized:
            return UserView("cold" if not state.items else "content", seen, sources)
        if trained and not fresh_known:
            mode, extras = "model", None
        elif trained or len(known_items) >= self.fold_in_min_items:
            mode = "fold-in"
            extras: dict[str, float] | None = {}
            for e in fresh_known:
                # Insertion order is recency order for the model's ranks: a re-consumed item
                # moves to the end (newest).
                extras[e.item_id] = extras.pop(e.item_id, 0.0) + event_weight(e.type, e.value)
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
        # Ranks weight the row by recency exactly as evaluation did (None: the model does not).
        ranks = model.user_ranks(state.key, extras or ())
        if self.vectors is not None:
            vector = np.asarray(model._user_vectors(row, ranks), dtype=np.float32).reshape(-1)
            return UserView(mode, seen, sources, vector=np.ascontiguousarray(vector))
        return UserView(mode, seen, sources, row=row, ranks=ranks)

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
            buf[:] = self.model.score_rows(view.row, view.ranks)[0]
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

    def rank(
        self,
        view: UserView,
        pool: int,
        filters: Filters,
        catalog: CatalogSnapshot,
        boosts: Sequence[tuple[frozenset[str], float]] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``pool`` best allowed items for ``view``: (model indices, scores), best first.

        From the ANN graphs when they are ready and no category restricts the candidates (a
        filter that leaves too few candidates falls back to exact scoring), else one
        matrix-vector product over every item in a reused buffer.
        """
        if (
            self.use_ann
            and view.vector is not None
            and view.vector.dtype == np.float32
            and not filters.categories
        ):
            found = self._ann_top(view, pool, filters, catalog, boosts)
            if found is not None:
                return found
        scores = self.scores(view)
        self.boost(scores, catalog, boosts)
        self.block(scores, view.seen, filters, catalog)
        idx = top_indices(scores, pool)
        return idx, scores[idx].astype(np.float64)  # a copy: the buffer is reused

    def _ann_top(
        self,
        view: UserView,
        pool: int,
        filters: Filters,
        catalog: CatalogSnapshot,
        boosts: Sequence[tuple[frozenset[str], float]],
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top candidates from the ANN graph; ``None`` when filters leave too few (use exact scoring)."""
        unavailable = self.unavailable(catalog)
        blocked = set(view.seen.tolist()) | set(self.indices(filters.exclude).tolist())
        wanted = pool + len(blocked) + min(len(unavailable), 1000) + 10
        kind = "similar" if view.mode == "session" else "score"
        keys, sims = self.model._index(kind).search(view.vector, wanted)
        excluded_cats = (
            self.in_categories(catalog, filters.exclude_categories) if filters.exclude_categories else None
        )
        unavailable_set = self._unavailable_set(catalog)
        out_idx: list[int] = []
        out_val: list[float] = []
        for j, s in zip(keys[0].tolist(), sims[0].tolist(), strict=True):
            if (
                j < 0
                or j in blocked
                or j in unavailable_set
                or (excluded_cats is not None and excluded_cats[j])
            ):
                continue
            out_idx.append(j)
            out_val.append(s)
            if len(out_idx) >= pool:
                break
        if len(out_idx) < pool and len(out_idx) < self.n_items - len(blocked) - len(unavailable_set):
            return None
        idx, values = np.array(out_idx, dtype=np.int64), np.array(out_val, dtype=np.float32)
        if boosts:
            # Only the graph's candidates are boosted here: with a strong boost the exact path
            # (a category filter) is the one that reaches every boosted item.
            self.boost_candidates(idx, values, catalog, boosts)
            order = np.lexsort((idx, -values))
            idx, values = idx[order], values[order]
        return idx, values.astype(np.float64)

    def boost_candidates(
        self,
        idx: np.ndarray,
        values: np.ndarray,
        catalog: CatalogSnapshot,
        boosts: Sequence[tuple[frozenset[str], float]],
    ) -> None:
        """:meth:`boost` for the scores ``values`` of the candidates ``idx`` only."""
        full = np.full(self.n_items, -np.inf, dtype=np.float32)
        full[idx] = values
        self.boost(full, catalog, boosts)
        values[:] = full[idx]

    def _unavailable_set(self, catalog: CatalogSnapshot) -> set[int]:
        key = ("unavailable-set", catalog.generation)
        found = self._per_catalog.get(key)
        if found is None:
            found = set(self.unavailable(catalog).tolist())
            self._remember(key, found)
        return found

    def block(self, scores: np.ndarray, seen: np.ndarray, filters: Filters, catalog: CatalogSnapshot) -> None:
        """Set the scores of items no answer may hold to -inf (seen, unavailable, filtered out)."""
        scores[seen] = -np.inf
        scores[self.unavailable(catalog)] = -np.inf
        if filters.exclude:
            scores[self.indices(filters.exclude)] = -np.inf
        if filters.categories:
            scores[~self.in_categories(catalog, filters.categories)] = -np.inf
        if filters.exclude_categories:
            scores[self.in_categories(catalog, filters.exclude_categories)] = -np.inf

    def boost(
        self, scores: np.ndarray, catalog: CatalogSnapshot, boosts: Sequence[tuple[frozenset[str], float]]
    ) -> None:
        """Lift (factor > 1) or lower the scores of items in boosted categories."""
        if not boosts:
            return
        finite = scores[np.isfinite(scores)]
        # A boost adds ln(factor) times the spread of this person's scores: factor > 1 always
        # moves an item up (even one scored 0, where a product would not), < 1 down, the
        # order among boosted items is kept, and the effect does not depend on the model's
        # score scale. Confidence already shrank the factor towards 1.
        spread = float(finite.max() - finite.min()) if len(finite) else 0.0
        spread = spread if spread > 0 else 1.0
        for category, factor in boosts:
            mask = self.in_categories(catalog, category)
            scores[mask] += np.float32(math.log(factor) * spread)

    # -- catalog-dependent index arrays ----------------------------------------------------
    def unavailable(self, catalog: CatalogSnapshot) -> np.ndarray:
        """Model indices of unavailable items (cached per catalog generation)."""
        key = ("unavailable", catalog.generation)
        found = self._per_catalog.get(key)
        if found is None:
            found = np.array(
                sorted(self.item_index[i] for i in catalog.unavailable if i in self.item_index),
                dtype=np.int64,
            )
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
