"""The event log in the SQL store (SQLite by default, PostgreSQL when configured)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text

from attune.events.model import Event, LoggedEvent
from attune.log.protocol import AppendResult
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import consumer_offsets, events

# Any fixed number: the PostgreSQL advisory lock that serializes appends across processes,
# so offsets become visible in commit order and no consumer skips an event.
_PG_APPEND_LOCK = 0x4174756E


class SqlEventLog:
    """Event log stored in the ``events`` table; one transaction per appended batch."""

    def __init__(self, engine: Engine, keys: SubjectKeys) -> None:
        self.engine = engine
        self.keys = keys
        self._lock = threading.Lock()
        self._is_pg = engine.dialect.name == "postgresql"
        self._existing = select(events.c.event_id).where(
            events.c.event_id.in_(bindparam("ids", expanding=True))
        )

    def append(self, batch: Sequence[Event]) -> AppendResult:
        """Append ``batch`` durably (the commit is the acknowledgement)."""
        duplicates: list[int] = []
        seen: set[str] = set()
        fresh: list[tuple[int, Event]] = []
        for index, event in enumerate(batch):
            if event.event_id in seen:
                duplicates.append(index)
            else:
                seen.add(event.event_id)
                fresh.append((index, event))
        if not fresh:
            return AppendResult(0, duplicates, self.head())
        with self._lock, self.engine.begin() as conn:
            if self._is_pg:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_APPEND_LOCK})
            existing = set(conn.execute(self._existing, {"ids": [e.event_id for _, e in fresh]}).scalars())
            rows = []
            for index, event in fresh:
                if event.event_id in existing:
                    duplicates.append(index)
                    continue
                rows.append(self._row(event))
            if rows:
                conn.execute(insert(events), rows)
            last = conn.execute(select(func.max(events.c.offset))).scalar() or 0
        duplicates.sort()
        return AppendResult(len(rows), duplicates, int(last))

    def _row(self, event: Event) -> dict:
        return {
            "event_id": event.event_id,
            "type": event.type,
            "user_key": self.keys.user(event.user_id) if event.user_id is not None else None,
            "anon_key": self.keys.anon(event.anonymous_id) if event.anonymous_id is not None else None,
            "item_id": event.item_id,
            "ts": event.timestamp,
            "received_at": event.received_at,
            "body": orjson.dumps(event.to_dict()),
        }

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Events after offset ``after``, oldest first."""
        query = (
            select(events.c.offset, events.c.body)
            .where(events.c.offset > after)
            .order_by(events.c.offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [LoggedEvent(offset, Event.from_dict(orjson.loads(body))) for offset, body in rows]

    def head(self) -> int:
        """Highest offset written."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(events.c.offset))).scalar() or 0)

    def count(self) -> int:
        """Number of events in the log."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)


class SqlOffsetStore:
    """Consumer positions in the ``consumer_offsets`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, consumer: str) -> int:
        """Committed position of ``consumer``."""
        with self.engine.connect() as conn:
            return get_position(conn, consumer)

    def set(self, consumer: str, position: int) -> None:
        """Commit ``position`` for ``consumer``."""
        with self.engine.begin() as conn:
            set_position(conn, consumer, position)


def get_position(conn: Connection, consumer: str) -> int:
    """Read a consumer position inside an open transaction."""
    value = conn.execute(
        select(consumer_offsets.c.position).where(consumer_offsets.c.consumer == consumer)
    ).scalar()
    return int(value or 0)


def set_position(conn: Connection, consumer: str, position: int) -> None:
    """Write a consumer position inside an open transaction (so state and position commit together)."""
    updated = conn.execute(
        consumer_offsets.update()
        .where(consumer_offsets.c.consumer == consumer)
        .values(position=position, updated_at=time.time())
    ).rowcount
    if not updated:
        conn.execute(
            insert(consumer_offsets).values(consumer=consumer, position=position, updated_at=time.time())
        )
