"""The event log in the SQL store (SQLite by default, PostgreSQL when configured)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, Engine, func, select

from attune.events.model import Event, LoggedEvent
from attune.log.gate import write_gate
from attune.log.protocol import AppendResult
from attune.profiles.identity import SubjectKeys
from attune.storage.engine import log_engine
from attune.storage.tables import events

# Any fixed number: the PostgreSQL advisory lock that serializes appends across processes,
# so offsets become visible in commit order and no consumer skips an event.
_PG_APPEND_LOCK = 0x4174756E


# Ids per dedupe query: under SQLite's bound-parameter limit on every version in use.
_DEDUPE_CHUNK = 900
# Bound parameters per multi-row insert: SQLite allows 32,766 since 3.32, 999 before.
_SQLITE_PARAMS = 4000 if sqlite3.sqlite_version_info >= (3, 32) else 999


# Most events one group commit carries; later batches wait for the next transaction.
_GROUP_EVENTS = 20_000


class _Pending:
    """One caller's batch waiting for a group commit, and what became of it."""

    __slots__ = ("accepted", "done", "duplicates", "error", "fresh", "last", "values", "written")

    def __init__(self, fresh: list[tuple[int, Event]], values: list[tuple], duplicates: list[int]) -> None:
        self.fresh = fresh
        self.values = values
        self.duplicates = duplicates
        self.accepted = 0
        self.last = 0
        self.error: BaseException | None = None
        self.written = False
        self.done = False


class SqlEventLog:
    """Event log stored in the ``events`` table.

    Appends use group commit: batches that arrive while a transaction is being written wait,
    and the next transaction carries all of them, so concurrent requests share one commit
    (one fsync) instead of queuing for one each. Every caller still returns only after the
    transaction holding its events has committed. ``append`` talks to the DBAPI cursor
    directly with pre-built SQL: building SQLAlchemy parameters per row cost more than the
    database's own work for a 1,000-event batch.
    """

    def __init__(self, engine: Engine, keys: SubjectKeys) -> None:
        #: On SQLite, an engine on the log's own file: appends lock only that file.
        self.engine = engine = log_engine(engine)
        self.keys = keys
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._queue: list[_Pending] = []
        self._writing = False
        self._is_pg = engine.dialect.name == "postgresql"
        self._gate = write_gate(engine)
        quote = engine.dialect.identifier_preparer.quote
        columns = ("event_id", "type", "user_key", "anon_key", "item_id", "ts", "received_at", "body")
        mark = "%s" if self._is_pg else "?"
        self._insert_sql = (
            f"INSERT INTO {quote(events.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
        self._width = len(columns)
        self._copy_sql = f"COPY {quote(events.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        offset = quote(events.c.offset.name)
        self._head_sql = f"SELECT max({offset}) FROM {quote(events.name)}"
        self._read_sql = (
            f"SELECT {offset}, body FROM {quote(events.name)} WHERE {offset} > {mark} "
            f"ORDER BY {offset} LIMIT {mark}"
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
        # Serialize before waiting for the write turn: the turn is held only for database work.
        pending = _Pending(fresh, [self._values(event) for _, event in fresh], duplicates)
        with self._turn:
            self._queue.append(pending)
        while True:
            with self._turn:
                while self._writing and not pending.done:
                    self._turn.wait()
                if pending.done:
                    break
                # Leader: write the waiting batches, oldest first and up to a bound, in one
                # transaction; loop until this caller's own batch has been written.
                self._writing = True
                group, size = [], 0
                while self._queue and (not group or size + len(self._queue[0].values) <= _GROUP_EVENTS):
                    group.append(self._queue.pop(0))
                    size += len(group[-1].values)
            try:
                self._write_group(group)
            finally:
                with self._turn:
                    for member in group:
                        if not member.written and member.error is None:
                            # The leader was interrupted: never report these events as accepted.
                            member.error = RuntimeError("the append was interrupted before it committed")
                        member.done = True
                    self._writing = False
                    self._turn.notify_all()
        if pending.error is not None:
            raise pending.error
        pending.duplicates.sort()
        return AppendResult(pending.accepted, pending.duplicates, pending.last)

    def _write_group(self, group: list[_Pending]) -> None:
        """Commit ``group`` together; if that fails, each batch alone, so errors stay with their batch."""
        try:
            self._commit(group)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller(s) it belongs to
            if len(group) == 1:
                group[0].error = exc
                return
            for member in group:
                try:
                    self._commit([member])
                except Exception as alone:  # noqa: BLE001 - re-raised in its own caller
                    member.error = alone

    def _commit(self, group: list[_Pending]) -> None:
        """One transaction: dedupe against the log and each other, insert, commit."""
        with self._gate.hold(urgent=True), self.engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                if self._is_pg:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_APPEND_LOCK,))
                else:
                    # Take the write lock before the dedupe check, so another process cannot
                    # insert the same event id between the check and the insert.
                    cursor.execute("BEGIN IMMEDIATE")
                taken = self._existing_ids(cursor, [e.event_id for m in group for _, e in m.fresh])
                rows: list[tuple] = []
                outcome: list[tuple[int, list[int]]] = []
                for member in group:
                    duplicates = list(member.duplicates)
                    before = len(rows)
                    for (index, event), row in zip(member.fresh, member.values, strict=True):
                        if event.event_id in taken:
                            duplicates.append(index)
                        else:
                            taken.add(event.event_id)
                            rows.append(row)
                    outcome.append((len(rows) - before, duplicates))
                if rows:
                    self._insert(cursor, rows)
                cursor.execute(self._head_sql)
                last = int(cursor.fetchone()[0] or 0)
            finally:
                cursor.close()
        # Only after the commit: a failed transaction leaves every member as it was, for a retry.
        for member, (accepted, duplicates) in zip(group, outcome, strict=True):
            member.accepted, member.duplicates, member.last = accepted, duplicates, last
            member.written = True

    def _existing_ids(self, cursor, ids: list[str]) -> set[str]:
        """Which of ``ids`` the log already holds."""
        found: set[str] = set()
        table = self.engine.dialect.identifier_preparer.quote(events.name)
        if self._is_pg:
            # Never prepared: see the docstring of attune.privacy.sqlin.
            cursor.execute(f"SELECT event_id FROM {table} WHERE event_id = ANY(%s)", (ids,), prepare=False)
            found.update(row[0] for row in cursor.fetchall())
            return found
        for start in range(0, len(ids), _DEDUPE_CHUNK):
            chunk = ids[start : start + _DEDUPE_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(f"SELECT event_id FROM {table} WHERE event_id IN ({marks})", chunk)
            found.update(row[0] for row in cursor.fetchall())
        return found

    def _insert(self, cursor, rows: list[tuple]) -> None:
        """Insert ``rows``: with ``COPY`` on PostgreSQL, several rows per statement on SQLite.

        sqlite3 releases the GIL around every statement step, and ``executemany`` steps once
        per row. Each release is a chance for another busy thread to keep the GIL for up to
        the switch interval (5 ms), so with requests being validated beside it, inserting
        1,000 rows one step at a time took seconds while holding the write lock. A
        multi-row ``VALUES`` list takes one step per statement.
        """
        if self._is_pg:
            # COPY: one statement streams every row; per-row INSERTs cost the server (which
            # shares this machine's cores) a parse, plan and execute each.
            with cursor.copy(self._copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        per_statement = _SQLITE_PARAMS // self._width
        statements: dict[int, str] = {}
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = statements.get(len(chunk))
            if sql is None:
                head, _, one = self._insert_sql.partition(" VALUES ")
                sql = statements[len(chunk)] = f"{head} VALUES {', '.join([one] * len(chunk))}"
            cursor.execute(sql, [value for row in chunk for value in row])

    def _values(self, event: Event) -> tuple:
        """The insert parameters of one event, in the order of ``_insert_sql``."""
        keys = self.keys
        return (
            event.event_id,
            event.type,
            keys.user(event.user_id) if event.user_id is not None else None,
            keys.anon(event.anonymous_id) if event.anonymous_id is not None else None,
            event.item_id,
            event.timestamp,
            event.received_at,
            orjson.dumps(event.to_dict()),
        )

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Events after offset ``after``, oldest first."""
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(self._read_sql, (after, limit))
                rows = cursor.fetchall()
            finally:
                cursor.close()
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
    value = conn.exec_driver_sql(driver_sql(conn, _GET_POSITION), (consumer,)).scalar()
    return int(value or 0)


def set_position(conn: Connection, consumer: str, position: int) -> None:
    """Write a consumer position inside an open transaction (so state and position commit together).

    Plain SQL on the driver: this runs once per consumer per batch, and building the
    SQLAlchemy statement anew each time cost more than the update itself.
    """
    now = time.time()
    updated = conn.exec_driver_sql(driver_sql(conn, _UPDATE_POSITION), (position, now, consumer)).rowcount
    if not updated:
        conn.exec_driver_sql(driver_sql(conn, _INSERT_POSITION), (consumer, position, now))


_GET_POSITION = "SELECT position FROM consumer_offsets WHERE consumer = ?"
_UPDATE_POSITION = "UPDATE consumer_offsets SET position = ?, updated_at = ? WHERE consumer = ?"
_INSERT_POSITION = "INSERT INTO consumer_offsets (consumer, position, updated_at) VALUES (?, ?, ?)"


def driver_sql(conn: Connection, text: str) -> str:
    """``text`` in the driver's parameter style (``?`` for sqlite3, ``%s`` for psycopg)."""
    return text if conn.dialect.paramstyle == "qmark" else text.replace("?", "%s")
