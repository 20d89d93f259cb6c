"""Storage of segments: definitions (versioned), memberships, entry/exit history, hourly sizes.

Rows stay here: callers get :class:`StoredDefinition`, :class:`Membership` tuples and plain
dicts. Membership changes are written with their history, their hourly roll-up and their
webhook outbox rows in one transaction, so what was announced is what was stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from attune.errors import NotFound
from attune.segments.membership import Change
from attune.storage.tables import (
    segment_definitions,
    segment_history,
    segment_memberships,
    segment_outbox,
    segment_sizes,
)
from attune.storage.upsert import insert_ignore, upsert

HOUR = 3600


@dataclass(frozen=True)
class StoredDefinition:
    """A definition as stored: the spec given by the user and its version."""

    name: str
    #: ``rule``, ``priority``, ``group``, ``description``, ``purpose``, ``kind`` (and for learnt
    #: segments whatever their model needs to describe them).
    spec: dict[str, Any]
    version: int
    created_at: float
    updated_at: float


class SegmentStore:
    """Reads and writes the segment tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- definitions ----------------------------------------------------------------
    def definitions(self) -> list[StoredDefinition]:
        """Every stored definition, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(segment_definitions).order_by(segment_definitions.c.name)).mappings().all()
        return [_definition(row) for row in rows]

    def definition(self, name: str) -> StoredDefinition:
        """The stored definition ``name``; :class:`NotFound` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(segment_definitions).where(segment_definitions.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no segment named {name!r}")
        return _definition(row)

    def put_definitions(self, conn: Connection, specs: dict[str, dict[str, Any]], now: float) -> dict[str, int]:
        """Create or replace definitions; a changed spec gets the next version. Returns versions."""
        current = {
            row.name: row
            for row in conn.execute(
                select(segment_definitions).where(segment_definitions.c.name.in_(list(specs)))
            ).all()
        }
        versions: dict[str, int] = {}
        for name, spec in specs.items():
            old = current.get(name)
            if old is None:
                conn.execute(
                    segment_definitions.insert().values(
                        name=name, spec=spec, version=1, created_at=now, updated_at=now
                    )
                )
                versions[name] = 1
            elif old.spec != spec:
                conn.execute(
                    segment_definitions.update()
                    .where(segment_definitions.c.name == name)
                    .values(spec=spec, version=old.version + 1, updated_at=now)
                )
                versions[name] = old.version + 1
            else:
                versions[name] = old.version
        return versions

    def delete_definition(self, conn: Connection, name: str) -> None:
        """Remove a definition (its memberships are removed by the caller's changes)."""
        conn.execute(delete(segment_definitions).where(segment_definitions.c.name == name))

    # -- memberships ----------------------------------------------------------------
    def memberships(self) -> Iterator[tuple[str, str, float, float]]:
        """Every stored membership as ``(segment, user_key, confidence, since)``."""
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=50_000).execute(
                select(
                    segment_memberships.c.segment,
                    segment_memberships.c.user_key,
                    segment_memberships.c.confidence,
                    segment_memberships.c.since,
                )
            )
            for row in result:
                yield row[0], row[1], row[2], row[3]

    def apply(
        self,
        conn: Connection,
        changes: Sequence[Change],
        webhook_urls: Iterable[str] = (),
        since: dict[tuple[str, str], float] | None = None,
        display: Callable[[str], str] = str,
        now: float | None = None,
    ) -> None:
        """Write ``changes``: membership rows, history, hourly sizes and outbox rows.

        ``since`` gives the instant each held membership started (an ``update`` keeps it);
        ``display`` turns a subject key into the id webhooks show; ``now`` (default: the clock)
        is when the outbox rows fall due.
        """
        if not changes:
            return
        since = since or {}
        held = [c for c in changes if c.kind != "exit"]
        gone = [c for c in changes if c.kind == "exit"]
        if gone:
            marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            conn.exec_driver_sql(
                f"DELETE FROM segment_memberships WHERE segment = {marker} AND user_key = {marker}",
                [(c.segment, c.user_key) for c in gone],
            )
        upsert(
            conn,
            segment_memberships,
            [
                {
                    "segment": c.segment,
                    "user_key": c.user_key,
                    "confidence": c.confidence,
                    "since": since.get((c.segment, c.user_key), c.at),
                }
                for c in held
            ],
            ["segment", "user_key"],
        )
        insert_ignore(
            conn,
            segment_history,
            [
                {
                    "segment": c.segment,
                    "user_key": c.user_key,
                    "change": c.kind,
                    "confidence": c.confidence,
                    "reason": c.reason,
                    "at": c.at,
                    "size": c.size,
                }
                for c in changes
            ],
        )
        upsert(conn, segment_sizes, _hourly(changes), ["segment", "hour"], increment=("entries", "exits"))
        urls = list(webhook_urls)
        if urls:
            now = time.time() if now is None else now
            rows = [
                {
                    "url": url,
                    "payload": webhook_payload(c, display),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for c in changes
                if c.kind != "update"
                for url in urls
            ]
            if rows:
                conn.execute(segment_outbox.insert(), rows)

    def clear(self, conn: Connection, *, history: bool = True) -> None:
        """Delete every membership (and by default the history and sizes): before a replay."""
        conn.execute(delete(segment_memberships))
        if history:
            conn.execute(delete(segment_history))
            conn.execute(delete(segment_sizes))

    # -- history --------------------------------------------------------------------
    def sizes(self, segment: str, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """Hourly ``{"hour", "entries", "exits", "size"}`` of ``segment`` (``hour`` in epoch seconds)."""
        query = select(segment_sizes).where(segment_sizes.c.segment == segment).order_by(segment_sizes.c.hour)
        if start is not None:
            query = query.where(segment_sizes.c.hour >= int(start // HOUR))
        if end is not None:
            query = query.where(segment_sizes.c.hour <= int(end // HOUR))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"hour": row["hour"] * HOUR, "entries": row["entries"], "exits": row["exits"], "size": row["size"]}
            for row in rows
        ]

    def changes(self, segment: str, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """The latest entries and exits of ``segment``, newest first (``seq`` pages with ``before``)."""
        query = (
            select(segment_history).where(segment_history.c.segment == segment).order_by(segment_history.c.seq.desc())
        )
        if before is not None:
            query = query.where(segment_history.c.seq < before)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query.limit(limit)).mappings()]

    def history_count(self, segment: str | None = None) -> int:
        """How many history rows there are (of one segment, or in all)."""
        query = select(func.count()).select_from(segment_history)
        if segment is not None:
            query = query.where(segment_history.c.segment == segment)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


def webhook_payload(change: Change, display: Callable[[str], str] = str) -> dict[str, Any]:
    """What a webhook receives for one change."""
    from attune.events.timestamps import iso

    return {
        "type": "segment.entered" if change.kind == "enter" else "segment.exited",
        "segment": change.segment,
        "user_id": display(change.user_key),
        "confidence": change.confidence,
        "reason": change.reason,
        "at": iso(change.at),
        "size": change.size,
    }


def _hourly(changes: Sequence[Change]) -> list[dict[str, Any]]:
    """Entries, exits and the last size per segment and hour of ``changes`` (in order)."""
    rollup: dict[tuple[str, int], dict[str, Any]] = {}
    for change in changes:
        key = (change.segment, int(change.at // HOUR))
        row = rollup.get(key)
        if row is None:
            row = rollup[key] = {"segment": key[0], "hour": key[1], "entries": 0, "exits": 0, "size": 0}
        if change.kind == "enter":
            row["entries"] += 1
        elif change.kind == "exit":
            row["exits"] += 1
        row["size"] = change.size
    return list(rollup.values())


def _definition(row: Any) -> StoredDefinition:
    return StoredDefinition(
        name=row["name"],
        spec=dict(row["spec"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
