"""The catalog as serving needs it: titles, categories, availability, content vectors, in memory.

Business filters and explanations look at item attributes on every request; reading them from
the store each time would cost more than the ranking. :class:`CatalogView` keeps a snapshot and
refreshes it incrementally (rows whose ``updated_at`` moved) when the in-process catalog says
it changed (its cached unavailable set was dropped by an upsert) and at most every
``poll_seconds`` otherwise, for writes made by another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import select

from attune.catalog.items import Catalog
from attune.storage.tables import items as items_table

log = logging.getLogger(__name__)

#: Attributes whose values name an item's categories (strings or lists of strings).
CATEGORY_ATTRIBUTES = ("category", "categories", "genres", "genre")
#: Boolean attributes that, when false, keep an item out of every answer.
AVAILABILITY_ATTRIBUTES = ("available", "in_stock")


def categories_of(attributes: Mapping[str, Any]) -> frozenset[str]:
    """Lower-cased category names of an item (from :data:`CATEGORY_ATTRIBUTES`)."""
    out: set[str] = set()
    for name in CATEGORY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            parts: Iterable[Any] = value.split("|")
        elif isinstance(value, list | tuple):
            parts = value
        else:
            continue
        out.update(str(p).strip().lower() for p in parts if str(p).strip())
    return frozenset(out)


def is_available(attributes: Mapping[str, Any]) -> bool:
    """False when ``available`` or ``in_stock`` is false (or a "false"/"0"/"no" string)."""
    for name in AVAILABILITY_ATTRIBUTES:
        value = attributes.get(name)
        if value is False or (isinstance(value, str) and value.strip().lower() in ("false", "0", "no")):
            return False
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
            return False
    return True


@dataclass
class CatalogSnapshot:
    """One consistent view of the catalog; ``generation`` grows with every change."""

    generation: int
    attributes: dict[str, dict[str, Any]]
    categories: dict[str, frozenset[str]]
    unavailable: frozenset[str]
    #: Lazily built content vectors: (item ids, row index, unit-length sparse matrix).
    _content: tuple[list[str], dict[str, int], sp.csr_matrix] | None = field(default=None, repr=False)
    _content_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def title(self, item_id: str) -> str:
        """A human name for the item: its ``title`` or ``name`` attribute, else its id."""
        attrs = self.attributes.get(item_id)
        if attrs:
            for name in ("title", "name"):
                value = attrs.get(name)
                if isinstance(value, str) and value.strip():
                    return value.strip()
        return item_id

    def exists(self, item_id: str) -> bool:
        """Whether the catalog holds ``item_id``."""
        return item_id in self.attributes

    def in_categories(self, item_id: str, wanted: frozenset[str]) -> bool:
        """Whether the item belongs to any of ``wanted`` (lower-cased names)."""
        return not wanted.isdisjoint(self.categories.get(item_id, ()))

    def content(self) -> tuple[list[str], dict[str, int], sp.csr_matrix]:
        """Unit-length TF-IDF + categorical + numeric vectors of every catalog item (built once)."""
        if self._content is None:
            with self._content_lock:
                if self._content is None:
                    from attune.recommend.models.content import item_feature_matrix

                    ids = sorted(self.attributes)
                    matrix = item_feature_matrix(ids, self.attributes) if ids else sp.csr_matrix((0, 0))
                    self._content = (ids, {i: n for n, i in enumerate(ids)}, sp.csr_matrix(matrix))
        return self._content

    def content_similar(
        self, item_ids: Iterable[str], exclude: Iterable[str] = ()
    ) -> list[tuple[str, float, str]]:
        """Catalog items by content similarity to ``item_ids``: (item, score, most similar source), best first."""
        ids, index, matrix = self.content()
        sources = [i for i in dict.fromkeys(item_ids) if i in index]
        if not sources or matrix.shape[1] == 0:
            return []
        sims = (matrix[[index[s] for s in sources]] @ matrix.T).toarray()  # sources × items
        best_source = sims.argmax(axis=0)
        total = sims.sum(axis=0)
        blocked = set(exclude) | set(sources)
        order = np.argsort(-total, kind="stable")
        return [
            (ids[j], float(total[j]), sources[int(best_source[j])])
            for j in order
            if total[j] > 0 and ids[j] not in blocked
        ]


class CatalogView:
    """Keeps a :class:`CatalogSnapshot` current (see the module docstring)."""

    def __init__(self, catalog: Catalog, poll_seconds: float = 10.0) -> None:
        self.catalog = catalog
        self.poll_seconds = poll_seconds
        self._snapshot: CatalogSnapshot | None = None
        self._seen_generation: int | None = None
        self._high_water = float("-inf")
        self._polled_at = float("-inf")
        self._lock = threading.Lock()
        self._polling = threading.Lock()

    def peek(self) -> CatalogSnapshot | None:
        """The snapshot when known current without a database read, else ``None``.

        A due poll for another process's writes runs in a background thread meanwhile.
        """
        snapshot = self._snapshot
        if snapshot is None or self.catalog.generation != self._seen_generation:
            return None
        if time.monotonic() - self._polled_at >= self.poll_seconds and self._polling.acquire(blocking=False):
            threading.Thread(target=self._poll_then_release, daemon=True, name="catalog-view").start()
        return snapshot

    def _poll_then_release(self) -> None:
        try:
            with self._lock:
                self._polled_at = time.monotonic()
                self._snapshot = self._load(self._snapshot)
        except Exception:
            log.exception("could not refresh the catalog view")
        finally:
            self._polling.release()

    def get(self) -> CatalogSnapshot:
        """The current snapshot (reads the changed rows when something changed)."""
        if self._fresh():
            return self._snapshot  # type: ignore[return-value]
        with self._lock:
            if self._fresh():
                return self._snapshot  # type: ignore[return-value]
            generation = self.catalog.generation
            self._polled_at = time.monotonic()
            self._snapshot = self._load(self._snapshot)
            self._seen_generation = generation
            return self._snapshot

    def _fresh(self) -> bool:
        return (
            self._snapshot is not None
            and self.catalog.generation == self._seen_generation
            and time.monotonic() - self._polled_at < self.poll_seconds
        )

    def _load(self, previous: CatalogSnapshot | None) -> CatalogSnapshot:
        query = select(items_table.c.item_id, items_table.c.attributes, items_table.c.updated_at)
        if previous is not None:
            query = query.where(items_table.c.updated_at >= self._high_water)
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(query).all()
        if previous is not None and all(previous.attributes.get(i) == (a or {}) for i, a, _ in rows):
            return previous
        attributes = dict(previous.attributes) if previous is not None else {}
        categories = dict(previous.categories) if previous is not None else {}
        unavailable = set(previous.unavailable) if previous is not None else set()
        for item_id, attrs, updated_at in rows:
            attrs = dict(attrs or {})
            attributes[item_id] = attrs
            categories[item_id] = categories_of(attrs)
            if is_available(attrs):
                unavailable.discard(item_id)
            else:
                unavailable.add(item_id)
            self._high_water = max(self._high_water, float(updated_at))
        generation = previous.generation + 1 if previous is not None else 1
        return CatalogSnapshot(generation, attributes, categories, frozenset(unavailable))
