"""Item categories from the catalog, cached for the features consumer.

An item's categories are the union of its ``category`` (text or list), ``categories`` and
``genres`` (list, or ``a|b`` text) attributes, trimmed and lower-cased, so a rule's
``category="drama"`` matches an item with genres ``["Drama"]``. Categories are looked up when a
value is asked for, from a cache refreshed with the catalog's changes, so re-categorizing an
item moves its past events too, online and offline alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from attune.storage.tables import items

CATEGORY_ATTRIBUTES = ("category", "categories", "genres")


def normalize_category(name: Any) -> str:
    """The form categories are compared in (trimmed, lower-case)."""
    return str(name).strip().lower()


def item_categories(attributes: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The sorted, de-duplicated categories of an item's attributes."""
    if not attributes:
        return ()
    found: set[str] = set()
    for name in CATEGORY_ATTRIBUTES:
        value = attributes.get(name)
        if value is None or isinstance(value, bool | dict):
            continue
        values: Iterable[Any]
        if isinstance(value, str):
            values = value.split("|")
        elif isinstance(value, list):
            values = value
        else:
            values = (value,)
        for part in values:
            if part is None or isinstance(part, bool | dict | list):
                continue
            text = normalize_category(part)
            if text:
                found.add(text)
    return tuple(sorted(found))


class ItemCategories:
    """item id -> categories, loaded from the ``items`` table and refreshed incrementally.

    :meth:`refresh` reads only items updated since the last read (by ``updated_at``), at most
    every ``refresh_seconds``; :attr:`version` changes whenever some item's categories did.
    """

    def __init__(self, refresh_seconds: float = 5.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._by_item: dict[str, tuple[str, ...]] = {}
        self._seen_until = float("-inf")
        self._checked_at = float("-inf")
        self.version = 0
        self._lock = threading.Lock()

    def get(self, item_id: str) -> tuple[str, ...]:
        """Categories of ``item_id`` (empty when unknown to the catalog)."""
        return self._by_item.get(item_id, ())

    def set(self, mapping: Mapping[str, Iterable[str]]) -> None:
        """Replace the cache by ``mapping`` (tests and offline sources)."""
        with self._lock:
            self._by_item = {
                i: tuple(sorted({normalize_category(c) for c in cs})) for i, cs in mapping.items()
            }
            self.version += 1

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """A copy of the cache."""
        return dict(self._by_item)

    def refresh(self, conn: Connection, *, force: bool = False) -> bool:
        """Read catalog changes when due; return whether any item's categories changed."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.refresh_seconds:
            return False
        self._checked_at = now
        query = select(items.c.item_id, items.c.attributes, items.c.updated_at)
        if self._seen_until != float("-inf"):
            # ">=": an item written in the same instant as the last one seen is read again.
            query = query.where(items.c.updated_at >= self._seen_until)
        changed = False
        with self._lock:
            for item_id, attributes, updated_at in conn.execute(query):
                categories = item_categories(attributes)
                if self._by_item.get(item_id, ()) != categories:
                    if categories:
                        self._by_item[item_id] = categories
                    else:
                        self._by_item.pop(item_id, None)
                    changed = True
                if updated_at is not None and updated_at > self._seen_until:
                    self._seen_until = updated_at
            if changed:
                self.version += 1
        return changed
