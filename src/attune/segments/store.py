"""Storage of segments: definitions (versioned), memberships, entry/exit history, hourly sizes.

Rows stay here: callers get :class:`StoredDefinition`, :class:`Membership` tuples and plain
dicts. Membership changes are written with their history, their hourly roll-up and their
webhook outbox rows in one transaction, so what was announced is what was stored.

A segment's memberships are its **snapshot** (if any: one compressed Arrow table written by a
bulk re-evaluation that changed many of them, see :meth:`SegmentStore.apply_bulk`) overlaid
with its rows in ``segment_memberships`` (a row with confidence 0 is a person who left after
the snapshot was taken). Writing a snapshot deletes the segment's rows. Why: a re-evaluation
from nothing of 20 segments over a million people changes ~6 million memberships; one row
each (plus a history row each) is over a gigabyte of page writes, which this machine's disk
needs longer for than the whole re-evaluation may take, while the snapshots are a few MB.
Such bulk changes are recorded as hourly counts (``segment_sizes``, so size over time stays
exact) and not as one history row per person; small ones keep per-person history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, select, update

from attune.errors import NotFound
from attune.segments.membership import BulkChange, Change
from attune.storage.tables import (
    segment_counters,
    segment_definitions,
    segment_history,
    segment_memberships,
    segment_outbox,
    segment_sizes,
    segment_snapshots,
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
            rows = (
                conn.execute(select(segment_definitions).order_by(segment_definitions.c.name))
                .mappings()
                .all()
            )
        return [_definition(row) for row in rows]

    def definition(self, name: str) -> StoredDefinition:
        """The stored definition ``name``; :class:`NotFound` when there is none."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(segment_definitions).where(segment_definitions.c.name == name))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no segment named {name!r}")
        return _definition(row)

    def put_definitions(
        self, conn: Connection, specs: dict[str, dict[str, Any]], now: float
    ) -> dict[str, int]:
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
        if any(versions[n] != (current[n].version if n in current else 0) for n in versions):
            self.bump(conn)  # other processes reload definitions and memberships
        return versions

    def delete_definition(self, conn: Connection, name: str) -> None:
        """Remove a definition with whatever is left of its memberships (rows, snapshot)."""
        conn.execute(delete(segment_definitions).where(segment_definitions.c.name == name))
        conn.execute(delete(segment_memberships).where(segment_memberships.c.segment == name))
        conn.execute(delete(segment_snapshots).where(segment_snapshots.c.segment == name))
        self.bump(conn)

    # -- snapshots and the change generation ----------------------------------------
    def snapshots(self) -> Iterator[tuple[str, list[str], np.ndarray, np.ndarray]]:
        """Every stored snapshot as ``(segment, keys, confidences, since)``."""
        with self.engine.connect() as conn:
            names = conn.execute(select(segment_snapshots.c.segment)).scalars().all()
        for name in names:  # one at a time: each may be megabytes
            with self.engine.connect() as conn:
                data = conn.execute(
                    select(segment_snapshots.c.data).where(segment_snapshots.c.segment == name)
                ).scalar()
            if data is not None:
                yield (name, *decode_snapshot(bytes(data)))

    def snapshotted(self, conn: Connection) -> set[str]:
        """Names of the segments that have a snapshot."""
        return set(conn.execute(select(segment_snapshots.c.segment)).scalars())

    def write_snapshot(
        self, conn: Connection, segment: str, keys: Sequence[str], confidence: Any, since: Any, at: float
    ) -> None:
        """Store ``segment``'s whole membership as one snapshot; its rows are dropped."""
        data = encode_snapshot(keys, confidence, since)
        conn.execute(delete(segment_memberships).where(segment_memberships.c.segment == segment))
        conn.execute(delete(segment_snapshots).where(segment_snapshots.c.segment == segment))
        conn.execute(
            segment_snapshots.insert().values(segment=segment, taken_at=at, rows=len(keys), data=data)
        )
        self.bump(conn)

    def drop_from_snapshots(self, conn: Connection, keys: Iterable[str]) -> int:
        """Rewrite every snapshot that names one of ``keys`` without them (erasure); how many were."""
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = pa.array(sorted(set(keys)), pa.string())
        rewritten = 0
        names = conn.execute(select(segment_snapshots.c.segment)).scalars().all()
        for name in names:  # one at a time: each may be megabytes
            data, at = conn.execute(
                select(segment_snapshots.c.data, segment_snapshots.c.taken_at).where(
                    segment_snapshots.c.segment == name
                )
            ).one()
            table = _read_table(bytes(data))
            found = pc.is_in(table.column("key"), value_set=wanted)
            if not pc.any(found).as_py():
                continue
            kept = table.filter(pc.invert(found))
            conn.execute(
                update(segment_snapshots)
                .where(segment_snapshots.c.segment == name)
                .values(data=_write_table(kept), rows=kept.num_rows, taken_at=at)
            )
            rewritten += 1
        return rewritten

    def bump(self, conn: Connection) -> None:
        """Advance the change generation (other processes reload their memberships)."""
        done = conn.execute(
            update(segment_counters)
            .where(segment_counters.c.name == "generation")
            .values(value=segment_counters.c.value + 1)
        ).rowcount
        if not done:
            conn.execute(segment_counters.insert().values(name="generation", value=1))

    def marks(self) -> tuple[int, int]:
        """``(generation, last history seq)``: when either moves, memberships changed."""
        with self.engine.connect() as conn:
            generation = conn.execute(
                select(segment_counters.c.value).where(segment_counters.c.name == "generation")
            ).scalar()
            seq = conn.execute(select(func.max(segment_history.c.seq))).scalar()
        return int(generation or 0), int(seq or 0)

    def history_since(self, seq: int, limit: int = 50_000) -> list[tuple[int, str, str, str, float, float]]:
        """History rows after ``seq``: ``(seq, segment, user_key, change, confidence, at)``."""
        h = segment_history
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(h.c.seq, h.c.segment, h.c.user_key, h.c.change, h.c.confidence, h.c.at)
                .where(h.c.seq > seq)
                .order_by(h.c.seq)
                .limit(limit)
            ).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]

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
        tombstones: list[dict[str, Any]] = []
        if gone:
            # Leaving a segment that has a snapshot needs a row saying so (confidence 0).
            snapshotted = self.snapshotted(conn)
            deleted = [(c.segment, c.user_key) for c in gone if c.segment not in snapshotted]
            tombstones = [
                {"segment": c.segment, "user_key": c.user_key, "confidence": 0.0, "since": c.at}
                for c in gone
                if c.segment in snapshotted
            ]
            if deleted:
                marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                conn.exec_driver_sql(
                    f"DELETE FROM segment_memberships WHERE segment = {marker} AND user_key = {marker}",
                    deleted,
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
            ]
            + tombstones,
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
            rows = _outbox_rows([c for c in changes if c.kind != "update"], urls, display, now)
            if rows:
                conn.execute(segment_outbox.insert(), rows)

    def apply_bulk(
        self,
        conn: Connection,
        bulk: BulkChange,
        webhook_urls: Iterable[str] = (),
        display: Callable[[str], str] = str,
        now: float | None = None,
    ) -> None:
        """Write one segment's bulk change: as rows with history when it has no snapshot,
        else as the snapshot, the hourly counts and the outbox rows (no per-person history)."""
        urls = list(webhook_urls)
        if bulk.snapshot is None:
            self.apply(conn, bulk.changes(), urls, since=bulk_since(bulk), display=display, now=now)
            return
        keys, confidence, since = bulk.snapshot
        self.write_snapshot(conn, bulk.segment, keys, confidence, since, bulk.at)
        entries, exits = len(bulk.entered[0]), len(bulk.exited[0])
        upsert(
            conn,
            segment_sizes,
            [
                {
                    "segment": bulk.segment,
                    "hour": int(bulk.at // HOUR),
                    "entries": entries,
                    "exits": exits,
                    "size": bulk.size_before - exits + entries,
                }
            ],
            ["segment", "hour"],
            increment=("entries", "exits"),
        )
        if urls and entries + exits:
            now = time.time() if now is None else now
            announced = [c for c in bulk.changes() if c.kind != "update"]
            for start in range(0, len(announced), 50_000):
                conn.execute(
                    segment_outbox.insert(),
                    _outbox_rows(announced[start : start + 50_000], urls, display, now),
                )

    def announce(
        self, conn: Connection, changes: Sequence[Change], webhook_urls: Iterable[str], display: Callable[[str], str],
        now: float,
    ) -> None:  # fmt: skip
        """Queue webhook deliveries of ``changes`` (already stored) in the outbox."""
        urls = list(webhook_urls)
        announced = [c for c in changes if c.kind != "update"]
        for start in range(0, len(announced), 50_000):
            rows = _outbox_rows(announced[start : start + 50_000], urls, display, now)
            if rows:
                conn.execute(segment_outbox.insert(), rows)

    def clear(self, conn: Connection, *, history: bool = True) -> None:
        """Delete every membership (and by default the history and sizes): before a replay."""
        conn.execute(delete(segment_memberships))
        conn.execute(delete(segment_snapshots))
        self.bump(conn)
        if history:
            conn.execute(delete(segment_history))
            conn.execute(delete(segment_sizes))

    # -- history --------------------------------------------------------------------
    def sizes(
        self, segment: str, start: float | None = None, end: float | None = None
    ) -> list[dict[str, Any]]:
        """Hourly ``{"hour", "entries", "exits", "size"}`` of ``segment`` (``hour`` in epoch seconds)."""
        query = select(segment_sizes).where(segment_sizes.c.segment == segment).order_by(segment_sizes.c.hour)
        if start is not None:
            query = query.where(segment_sizes.c.hour >= int(start // HOUR))
        if end is not None:
            query = query.where(segment_sizes.c.hour <= int(end // HOUR))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "hour": row["hour"] * HOUR,
                "entries": row["entries"],
                "exits": row["exits"],
                "size": row["size"],
            }
            for row in rows
        ]

    def changes(self, segment: str, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """The latest entries and exits of ``segment``, newest first (``seq`` pages with ``before``)."""
        query = (
            select(segment_history)
            .where(segment_history.c.segment == segment)
            .order_by(segment_history.c.seq.desc())
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


def _outbox_rows(
    changes: Sequence[Change], urls: list[str], display: Callable[[str], str], now: float
) -> list[dict[str, Any]]:
    return [
        {
            "url": url,
            "payload": webhook_payload(c, display),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for c in changes
        for url in urls
    ]


def bulk_since(bulk: BulkChange) -> dict[tuple[str, str], float]:
    """When each membership a bulk change keeps started: entries now, updates as before."""
    since = {(bulk.segment, str(k)): bulk.at for k in bulk.entered[0]}
    if bulk.updated_since is not None:
        since.update(
            ((bulk.segment, str(k)), float(s))
            for k, s in zip(bulk.updated[0], bulk.updated_since, strict=True)
        )
    return since


def encode_snapshot(keys: Sequence[str], confidence: Any, since: Any) -> bytes:
    """Keys, confidences and start instants as an Arrow IPC stream (zstd)."""
    import pyarrow as pa

    table = pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "confidence": pa.array(np.asarray(confidence, dtype=np.float64)),
            "since": pa.array(np.asarray(since, dtype=np.float64)),
        }
    )
    return _write_table(table)


def decode_snapshot(data: bytes) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The inverse of :func:`encode_snapshot`."""
    table = _read_table(data)
    return (
        table.column("key").to_pylist(),
        table.column("confidence").to_numpy(),
        table.column("since").to_numpy(),
    )


def _write_table(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_table(data: bytes) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


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
