"""Items and their attributes (title, genres, free text, numbers, availability)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from attune.errors import NotFound
from attune.storage.tables import items
from attune.storage.upsert import upsert

MAX_ATTRIBUTES_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog item."""

    item_id: str
    attributes: dict[str, Any]
    updated_at: float


def check_item(item_id: Any, attributes: Any, max_id_length: int = 256) -> list[str]:
    """Reasons ``attributes`` cannot be stored for ``item_id`` (empty when fine)."""
    errors: list[str] = []
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or not str(item_id).strip():
        errors.append("item_id: is required and must be a non-empty string")
    elif len(str(item_id)) > max_id_length:
        errors.append(f"item_id: longer than {max_id_length} characters")
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in str(item_id)):
        # The same rule as for ids in events; PostgreSQL cannot even store NUL.
        errors.append("item_id: contains control characters")
    if not isinstance(attributes, Mapping):
        errors.append("attributes: must be an object")
        return errors
    for name, value in attributes.items():
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{name}: must be a finite number")
        elif isinstance(value, dict):
            errors.append(f"{name}: nested objects are not supported; use flat attributes or lists")
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            errors.append(f"{name}: lists may only hold strings, numbers and booleans")
    if "available" in attributes and not isinstance(attributes["available"], bool):
        errors.append("available: must be true or false")
    if not errors and len(orjson.dumps(dict(attributes))) > MAX_ATTRIBUTES_BYTES:
        errors.append(f"attributes: larger than {MAX_ATTRIBUTES_BYTES} bytes when serialized")
    return errors


def normalize_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Trim strings and split pipe-separated ``genres``/``categories`` text into lists."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if isinstance(value, str):
            value = value.strip()
            if name in ("genres", "categories", "tags") and "|" in value:
                value = [part.strip() for part in value.split("|") if part.strip()]
        out[str(name)] = value
    return out


class Catalog:
    """Reads and writes items; keeps the set of unavailable items for serving filters."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._unavailable: frozenset[str] | None = None
        self._lock = threading.Lock()
        #: Counts this process's catalog writes (caches elsewhere compare it to stay current).
        self.generation = 0

    def upsert(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Insert or replace items; return how many were written."""
        now = time.time()
        rows = [
            {"item_id": str(item_id).strip(), "attributes": normalize_attributes(attrs), "updated_at": now}
            for item_id, attrs in entries
        ]
        if rows:
            with self.engine.begin() as conn:
                upsert(conn, items, rows, ["item_id"])
            self._unavailable = None
            self.generation += 1
        return len(rows)

    def get(self, item_id: str) -> Item:
        """One item, or :class:`NotFound`."""
        if "\x00" in item_id:  # no stored id holds NUL, and PostgreSQL refuses it in a query
            raise NotFound(f"item {item_id!r} is not in the catalog")
        with self.engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.item_id == item_id)).mappings().first()
        if row is None:
            raise NotFound(f"item {item_id!r} is not in the catalog")
        return Item(row["item_id"], dict(row["attributes"]), row["updated_at"])

    def exists(self, item_id: str) -> bool:
        """Whether ``item_id`` is in the catalog."""
        if "\x00" in item_id:  # PostgreSQL cannot even compare a NUL; no stored id has one
            return False
        with self.engine.connect() as conn:
            return conn.execute(select(items.c.item_id).where(items.c.item_id == item_id)).first() is not None

    def count(self) -> int:
        """Number of items."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(items)).scalar() or 0)

    def unavailable(self) -> frozenset[str]:
        """Ids of items marked ``available: false`` (never recommended)."""
        cached = self._unavailable
        if cached is None:
            with self._lock, self.engine.connect() as conn:
                rows = conn.execute(select(items.c.item_id, items.c.attributes)).all()
                cached = frozenset(i for i, attrs in rows if (attrs or {}).get("available") is False)
                self._unavailable = cached
        return cached
