"""The features consumer: keeps every person's features current in memory, durably.

People are keyed by canonical profile key: the profiles consumer runs first in the same lane
and stores identity links, and this consumer reads the links of each batch's ids, so events
of an anonymous id linked to a user count for the user; when an id that has features of its
own becomes linked, its events move to the person it now belongs to.

Durability and exactly-once: state is applied in memory and marked dirty; changed people are
written to ``feature_state`` together with the consumer position (by the runner, in the same
transaction) when ``write_every_subjects`` are dirty or on the periodic flush. After a crash
the stored states and the position agree, so replaying the log from the position gives the
same store as a full replay. An event is applied in memory once even when a failed batch is
retried (``_applied``), and a write whose commit was lost is redone (``_inflight``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, select

from attune.events.model import LoggedEvent
from attune.features.categories import ItemCategories
from attune.features.definitions import DWELL_PROPERTIES, FeatureDefinitions
from attune.features.store import FeatureStore
from attune.log.sql import driver_sql, get_position
from attune.privacy.sqlin import select_in
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import feature_state, identity_links
from attune.storage.upsert import upsert

log = logging.getLogger(__name__)

#: ``fn(subject_keys, now)``: called after each batch with the people whose features changed.
Listener = Callable[[set[str], float], None]
_NAN = float("nan")
_EMPTY: dict[str, Any] = {}
#: Links written after a given offset, through their index (``?`` becomes ``%s`` on PostgreSQL).
_NEW_LINKS_SQL = "SELECT alias_key, canonical_key, link_offset FROM identity_links WHERE link_offset > ?"


class FeaturesConsumer:
    """Updates the :class:`FeatureStore` per event and tells listeners who changed."""

    name = "features"
    realtime = True

    def __init__(
        self,
        keys: SubjectKeys,
        definitions: FeatureDefinitions | None = None,
        *,
        category_refresh_seconds: float = 5.0,
        write_every_subjects: int = 20_000,
        after: str | None = None,
        flush_seconds: float | None = None,
    ) -> None:
        self.keys = keys
        #: How often the pipeline flushes this consumer (None: the pipeline's interval).
        self.flush_seconds = flush_seconds
        #: Consumer whose identity links this one reads; it must have handled a batch first.
        self.after = after
        self.categories = ItemCategories(category_refresh_seconds)
        self.store = FeatureStore(definitions, self.categories)
        self.write_every_subjects = write_every_subjects
        self._listeners: list[Listener] = []
        self._loaded = False
        #: Highest log offset applied to the in-memory store.
        self._applied = 0
        #: Highest offset handed to the runner as durable.
        self._durable = 0
        self._dirty: set[str] = set()
        #: Changed people already serialized by :meth:`prepare_flush` (None: gone), to write next.
        self._prepared: dict[str, bytes | None] = {}
        #: Offset and people of the last write, redone if its commit turns out lost.
        self._inflight: tuple[int, set[str]] | None = None
        #: Changed people not yet delivered to every listener (kept across a failed call).
        self._unnotified: set[str] = set()
        #: Highest ``link_offset`` seen: later links are read with each batch.
        #: ``None``: read every link once (after start), to merge ids linked while we were down.
        self._links_seen: int | None = None

    @classmethod
    def from_settings(cls, settings: Any, keys: SubjectKeys) -> FeaturesConsumer:
        """Build from the installation settings (``features`` and ``ingest`` sections)."""
        section = settings.features
        return cls(
            keys,
            FeatureDefinitions.from_settings(section, settings.ingest.max_future_seconds),
            category_refresh_seconds=section.category_refresh_seconds,
            write_every_subjects=section.write_every_subjects,
            after="profiles",
            flush_seconds=section.flush_seconds,
        )

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(subject_keys, now)`` after each batch, in the consumer's thread."""
        self._listeners.append(fn)

    # -- Consumer protocol -------------------------------------------------
    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        """Apply ``batch`` in memory; write dirty people when enough have piled up."""
        self.ensure_loaded(conn)
        self.categories.refresh(conn)
        if batch and batch[-1].offset > self._applied:
            if self.after is not None and get_position(conn, self.after) < batch[-1].offset:
                # Links not yet stored would send events to the wrong person for good: wait
                # (the runner retries this batch) rather than run ahead of identity stitching.
                raise FeaturesWaiting(
                    f"features waits for the {self.after} consumer to reach offset {batch[-1].offset}"
                )
            links = self._links(conn, batch)
            with self.store.lock:
                changed = self._apply(batch, links)
            self._dirty |= changed
            self._unnotified |= changed
        self._notify()
        if len(self._dirty) >= self.write_every_subjects:
            return self._write(conn)
        return None

    def flush(self, conn: Connection) -> int | None:
        """Write every dirty person; return the offset now durable (None when idle)."""
        self.ensure_loaded(conn)
        if self._dirty or self._prepared or self._applied > self._durable:
            return self._write(conn)
        return None

    def reset(self, conn: Connection) -> None:
        """Forget every feature (memory and table) before a replay."""
        conn.execute(delete(feature_state))
        with self.store.lock:
            self.store.clear()
        self._loaded = True
        self._applied = self._durable = 0
        self._dirty.clear()
        self._prepared.clear()
        self._unnotified.clear()
        self._inflight = None
        self._links_seen = None

    # -- other operations ----------------------------------------------------
    def ensure_loaded(self, conn: Connection) -> None:
        """Load the stored state and position once (first call after start)."""
        if self._loaded:
            return
        self.categories.refresh(conn, force=True)
        position = get_position(conn, self.name)
        with self.store.lock:
            self.store.clear()
            for key, blob in conn.execute(select(feature_state.c.subject_key, feature_state.c.state)):
                self.store.load(key, bytes(blob))
        self._applied = self._durable = position
        self._loaded = True

    def forget(self, subject_key: str, conn: Connection) -> None:
        """Erase one person's features (memory now, table in ``conn``'s transaction)."""
        with self.store.lock:
            self.store.remove(subject_key)
            # A state serialized for the next flush must not bring the person back.
            self._prepared.pop(subject_key, None)
        self._dirty.discard(subject_key)
        conn.execute(delete(feature_state).where(feature_state.c.subject_key == subject_key))

    # -- internals -----------------------------------------------------------
    def _links(self, conn: Connection, batch: list[LoggedEvent]) -> dict[str, str]:
        """alias key -> canonical key for every id the batch names (one query)."""
        keys = self.keys
        wanted: set[str] = set()
        for logged in batch:
            event = logged.event
            if event.user_id is not None:
                wanted.add(keys.user(event.user_id))
            if event.anonymous_id is not None:
                wanted.add(keys.anon(event.anonymous_id))
            previous = _previous_id(event)
            if previous is not None:
                wanted.update((keys.user(previous), keys.anon(previous)))
        # Besides the batch's own ids, every link written since the last batch: a merge can
        # re-point a subject the batch does not name (an alias of an alias), whose features
        # must move too. The profiles consumer stamps each link with the log offset of the
        # batch that wrote it and commits in offset order, so "newer than the highest stamp
        # seen" misses none and, through its index, reads only the new ones.
        seen = -1 if self._links_seen is None else self._links_seen
        links: dict[str, str] = {}
        # Ids with NUL never reach the log's readers, but PostgreSQL would refuse the query.
        for alias, canonical in select_in(
            conn, identity_links, ("alias_key", "canonical_key"), "alias_key",
            [k for k in wanted if "\x00" not in k],
        ):
            if alias != canonical:
                links[alias] = canonical
        newest = max(seen, 0)
        for alias, canonical, link_offset in conn.exec_driver_sql(driver_sql(conn, _NEW_LINKS_SQL), (seen,)):
            if alias != canonical:
                links[alias] = canonical
            newest = max(newest, link_offset)
        self._links_seen = newest
        return links

    def _apply(self, batch: list[LoggedEvent], links: dict[str, str]) -> set[str]:
        store = self.store
        keys = self.keys
        changed: set[str] = set()
        # Ids that now belong to someone else: their features move there first.
        for alias, canonical in links.items():
            if alias in store.persons:
                store.merge(alias, canonical)
                changed.add(alias)
                changed.add(canonical)
        applied = self._applied
        type_codes = store.type_codes
        item_codes = store.item_codes
        context_codes = store.context_codes
        add = store.add
        for logged in batch:
            offset = logged.offset
            if offset <= applied:
                continue
            event = logged.event
            if event.user_id is not None:
                key = keys.user(event.user_id)
            else:
                key = keys.anon(event.anonymous_id)  # type: ignore[arg-type]
            key = links.get(key, key)
            code = type_codes.get(event.type)
            if code is None:
                code = store.type_code(event.type)
            item = -1
            if event.item_id is not None:
                item = item_codes.get(event.item_id, -1)
                if item < 0:
                    item = store.item_code(event.item_id)
            context = context_tuple(event.context)
            ctx = context_codes.get(context)
            if ctx is None:
                ctx = store.context_code(context)
            value = event.value
            add(
                key,
                round(event.timestamp * 1_000_000),
                offset,
                code,
                item,
                ctx,
                _NAN if value is None else float(value),
                dwell_of(event.properties),
            )
            changed.add(key)
            applied = offset
            self._applied = applied
        return changed

    def _notify(self) -> None:
        if not self._unnotified or not self._listeners:
            self._unnotified.clear()
            return
        keys = set(self._unnotified)
        now = time.time()
        for listener in self._listeners:
            listener(keys, now)
        self._unnotified.clear()

    def prepare_flush(self, pause: Callable[[], None] | None = None) -> None:
        """Serialize the changed people now, before the flush transaction opens.

        The runner calls this outside its transaction (and the write gate), so appends do
        not wait while a few thousand people are serialized; :meth:`flush` then only writes.
        Events are applied on the same thread as flushes, so nothing changes in between.
        ``pause()`` is called every ``_PAUSE_EVERY`` people, without the store's lock: after
        a burst tens of thousands of people changed, and serializing them in one go (half a
        second of Python) kept the serving process's event loop from its requests.
        """
        dirty = list(self._dirty)
        self._dirty = set()
        for start in range(0, len(dirty), _PAUSE_EVERY):
            try:
                with self.store.lock:
                    for key in dirty[start : start + _PAUSE_EVERY]:
                        self._prepared[key] = self.store.dump(key)
            except BaseException:
                self._dirty.update(key for key in dirty[start:] if key not in self._prepared)
                raise
            if pause is not None:
                pause()

    def _write(self, conn: Connection) -> int:
        if self._inflight is not None and get_position(conn, self.name) < self._inflight[0]:
            # The last write's transaction did not commit: write those people again.
            self._dirty |= self._inflight[1]
        rows: list[dict[str, Any]] = []
        gone: list[str] = []
        now = time.time()
        with self.store.lock:
            blobs, self._prepared = self._prepared, {}
            for key in self._dirty:
                blobs[key] = self.store.dump(key)
            self._dirty = set()
            applied = self._applied
        for key, blob in blobs.items():
            if blob is None:
                gone.append(key)
            else:
                rows.append({"subject_key": key, "state": blob, "updated_at": now})
        written = set(blobs)
        try:
            upsert(conn, feature_state, rows, ["subject_key"])
            if gone:
                conn.execute(
                    delete(feature_state).where(
                        feature_state.c.subject_key.in_(bindparam("keys", expanding=True))
                    ),
                    {"keys": gone},
                )
        except BaseException:
            self._dirty |= written
            raise
        self._inflight = (applied, written)
        self._durable = applied
        return applied


#: People serialized between two calls of a flush's ``pause`` (about 5 ms of work).
_PAUSE_EVERY = 100


class FeaturesWaiting(RuntimeError):
    """Raised to retry a batch later: the identity consumer has not handled it yet."""


def context_tuple(context: dict[str, Any] | None) -> tuple[str | None, ...]:
    """(device, os, browser, country, city, timezone) of an event, read as the lake stores them."""
    if not context:
        return (None, None, None, None, None, None)
    device = context.get("device")
    if type(device) is not dict:
        device = _EMPTY
    geo = context.get("geo")
    if type(geo) is not dict:
        geo = _EMPTY
    tz = context.get("timezone")
    return (
        _text(device.get("type")),
        _text(device.get("os")),
        _text(device.get("browser")),
        _text(geo.get("country")),
        _text(geo.get("city")),
        tz if type(tz) is str else None,
    )


def dwell_of(properties: dict[str, Any] | None) -> float:
    """Dwell seconds of an event: the first of ``DWELL_PROPERTIES`` that is a JSON number >= 0."""
    if not properties:
        return _NAN
    for name in DWELL_PROPERTIES:
        value = properties.get(name)
        if type(value) in (int, float) and math.isfinite(value) and value >= 0:
            return float(value)
    return _NAN


def _text(value: Any) -> str | None:
    # The lake turns a non-string context value into its JSON text; do the same.
    if value is None or type(value) is str:
        return value
    return orjson.dumps(value).decode()


def _previous_id(event: Any) -> str | None:
    if event.type != "alias":
        return None
    previous = (event.properties or {}).get("previous_id")
    if isinstance(previous, str | int) and not isinstance(previous, bool):
        text = str(previous).strip()
        if text and "\x00" not in text:
            return text
    return None


class FeaturesEraser:
    """Erasure hook (``runtime.privacy.erasure.register``): drops the person's features.

    Runs in the SQL phase, inside the erasure transaction, for every subject key of the person.
    """

    name = "features"
    phase = "sql"

    def __init__(self, consumer: FeaturesConsumer) -> None:
        self.consumer = consumer

    def erase(self, request: Any) -> int:
        """Forget every key of ``request.subject_keys``; return how many people had features."""
        with self.consumer.store.lock:
            held = sum(1 for key in request.subject_keys if key in self.consumer.store.persons)
        for key in request.subject_keys:
            self.consumer.forget(key, request.conn)
        return held
