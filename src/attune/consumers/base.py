"""The consumer protocol and the runner that feeds a consumer from the log."""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine

from attune.events.model import LoggedEvent
from attune.log.gate import write_gate
from attune.log.protocol import EventLog
from attune.log.sql import get_position, set_position
from attune.observability import metrics

log = logging.getLogger(__name__)


class Consumer(Protocol):
    """Derives state from the log.

    ``handle`` runs inside the transaction that also commits the consumer's position, so a
    transactional consumer applies each event exactly once. It returns the offset whose
    effects are now durable, or ``None`` when it only buffered (``flush`` makes buffers
    durable later).
    """

    name: str
    #: True when requests wait for this consumer to read their own writes.
    realtime: bool
    #: Optional, default True. False when ``handle`` and ``flush`` never write through
    #: ``conn`` (their durability lies elsewhere, like the lake's files): the runner then
    #: calls them outside any database transaction and commits only the position, briefly.
    # transactional: bool
    #: Optional, default True. False when ``handle`` also writes through transactions of its
    #: own (not only through ``conn``): such a consumer is never put into a transaction
    #: shared with others (see :func:`apply_together`), where the shared transaction's
    #: write lock would make its own writes wait for ever on SQLite.
    # shares_transaction: bool

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        """Apply ``batch``; return the durable offset or ``None``."""
        ...

    def flush(self, conn: Connection) -> int | None:
        """Make buffered work durable; return the durable offset or ``None``."""
        ...

    def reset(self, conn: Connection) -> None:
        """Delete all state this consumer derived (before a replay)."""
        ...


class ConsumerRunner:
    """Moves one consumer along the log, committing its position with its state."""

    def __init__(self, consumer: Consumer, log_: EventLog, engine: Engine, batch_size: int = 5000) -> None:
        self.consumer = consumer
        self.log = log_
        self.engine = engine
        self.batch_size = batch_size
        with engine.connect() as conn:
            self.position = get_position(conn, consumer.name)
        #: Highest offset handed to the consumer (ahead of ``position`` while it buffers).
        self.cursor = self.position
        self.failures = 0
        # Derived state only: appends (the log has a file of its own on SQLite) never wait for it.
        self.gate = write_gate(engine, "main")
        #: Called now and then during long work outside transactions (serializing state
        #: for a flush); :class:`attune.consumers.pipeline.Pipeline` sets it when paced, to
        #: rest while requests arrive.
        self.pause: Callable[[], None] | None = None
        # Looked up once: finding a labelled child costs more than the update (every step).
        self._metrics = (
            metrics.CONSUMER_EVENTS.labels(consumer.name),
            metrics.CONSUMER_BATCH_SECONDS.labels(consumer.name),
            metrics.CONSUMER_POSITION.labels(consumer.name),
        )
        self.transactional = bool(getattr(consumer, "transactional", True))
        self.shares_transaction = self.transactional and bool(getattr(consumer, "shares_transaction", True))

    def step(self) -> int:
        """Read and process at most one batch; return how many events were handled."""
        return self.apply(self.log.read(self.cursor, self.batch_size))

    def apply(self, batch: list[LoggedEvent]) -> int:
        """Process the part of ``batch`` after this runner's cursor; return how many events.

        Batches read once can be shared by several runners: each takes what it has not seen.
        """
        batch = self.unseen(batch)
        if not batch:
            return 0
        started = time.perf_counter()
        if self.transactional:
            with self.transaction() as conn:
                durable = self.handle_in(conn, batch)
            self._committed(durable)
        else:
            durable = self.consumer.handle(batch, None)  # type: ignore[arg-type]
            self._commit_position(durable)
        self.finished(batch, started)
        return len(batch)

    def unseen(self, batch: list[LoggedEvent]) -> list[LoggedEvent]:
        """The part of ``batch`` after this runner's cursor."""
        if batch and batch[0].offset <= self.cursor:
            return batch[bisect_right(batch, self.cursor, key=_offset) :]
        return batch

    def handle_in(self, conn: Connection, batch: list[LoggedEvent]) -> int | None:
        """Hand ``batch`` to the consumer inside ``conn``'s transaction and write its position there.

        Returns the durable offset, for :meth:`_committed` once that transaction has committed.
        """
        durable = self.consumer.handle(batch, conn)
        self._advance(conn, durable)
        return durable

    def finished(self, batch: list[LoggedEvent], started: float) -> None:
        """Move the cursor past ``batch`` (handled and committed) and record the metrics."""
        self.cursor = batch[-1].offset
        events, seconds, position = self._metrics
        events.inc(len(batch))
        seconds.observe(time.perf_counter() - started)
        position.set(self.cursor)

    def flush(self) -> None:
        """Ask the consumer to make buffered work durable and commit the position.

        A consumer may offer ``prepare_flush(pause)``: work that needs no database
        (serializing its state), run first, outside the transaction, so appends do not wait
        behind it at the write gate; it calls ``pause()`` between pieces of that work.
        """
        prepare = getattr(self.consumer, "prepare_flush", None)
        if prepare is not None:
            prepare(self.pause or _no_pause)
        if self.transactional:
            with self.transaction() as conn:
                durable = self.consumer.flush(conn)
                self._advance(conn, durable)
            self._committed(durable)
        else:
            self._commit_position(self.consumer.flush(None))  # type: ignore[arg-type]

    def drain(self) -> int:
        """Process until the log's head as seen now; return the number handled."""
        total = 0
        while (handled := self.step()) > 0:
            total += handled
        self.flush()
        return total

    def reset(self) -> None:
        """Forget all derived state and start again from offset 0."""
        with self.transaction() as conn:
            self.consumer.reset(conn)
            set_position(conn, self.consumer.name, 0)
        self.position = self.cursor = 0

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A consumer transaction: at the derived state's write gate (on SQLite appends lock
        the log's file only), without an fsync of its own.

        Derived state is rebuilt from the log, and the position commits with the state, so a
        consumer commit lost to a power cut only means replaying those events: on SQLite
        the transaction runs with ``synchronous=NORMAL`` (in WAL mode the database stays
        consistent; the next append's fsync makes it durable too), on PostgreSQL with
        ``synchronous_commit = off`` (the WAL writer flushes it within a fraction of a
        second; a crash loses at most that tail, never consistency). Appends keep the
        configured durability; that is what acknowledgements rest on. On PostgreSQL this
        matters most: commits flush the WAL one after another, so an append's commit waited
        behind each consumer commit's flush (one every 10 ms while single events arrive).
        """
        with self.gate.hold(urgent=False), self.engine.connect() as conn:
            restore = _relax_durability(conn)
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
            finally:
                if restore is not None:
                    conn.connection.driver_connection.execute(f"PRAGMA synchronous={restore}")

    def _advance(self, conn: Connection, durable: int | None) -> None:
        """Write ``durable`` as the position inside the state's transaction (if it moves)."""
        if durable is not None and durable > self.position:
            set_position(conn, self.consumer.name, durable)

    def _committed(self, durable: int | None) -> None:
        """Remember a position once its transaction has committed."""
        if durable is not None and durable > self.position:
            self.position = durable

    def _commit_position(self, durable: int | None) -> None:
        if durable is not None and durable > self.position:
            with self.transaction() as conn:
                set_position(conn, self.consumer.name, durable)
            self._committed(durable)


def _no_pause() -> None:
    """A pause that does not pause (unpaced pipelines, ``attune replay``)."""


def _offset(logged: LoggedEvent) -> int:
    return logged.offset


def _relax_durability(conn: Connection) -> int | None:
    """On SQLite, switch ``conn`` to ``synchronous=NORMAL``; return the level to restore."""
    if conn.dialect.name != "sqlite":
        return None
    raw = conn.connection.driver_connection
    info = conn.connection.info  # lives as long as the DBAPI connection: ask SQLite once
    level = info.get("attune.synchronous")
    if level is None:
        level = info["attune.synchronous"] = raw.execute("PRAGMA synchronous").fetchone()[0]
    if level <= 1:
        return None  # already NORMAL or OFF
    raw.execute("PRAGMA synchronous=NORMAL")
    return int(level)


def apply_together(runners: list[ConsumerRunner], batch: list[LoggedEvent]) -> dict[int, int | Exception]:
    """Apply ``batch`` to ``runners``; the transactional ones share one transaction.

    A lane's realtime consumers each used to commit a transaction of their own for every
    batch: four gate hand-overs, pool checkouts, position writes and commits per single
    event, which cost more CPU than the consumers' own work and kept the write gate (and
    the GIL) from appends. Sharing one transaction keeps each consumer's position committed
    with its state. If anything in the shared transaction fails, it is rolled back and each
    runner applies the batch alone, so a failing consumer is isolated exactly as before
    (consumers already tolerate a batch handed to them again after a rollback).

    Returns, by ``id(runner)``, the number of events each handled or the exception it raised.
    """
    results: dict[int, int | Exception] = {}
    shared = [(runner, runner.unseen(batch)) for runner in runners if runner.shares_transaction]
    shared = [(runner, part) for runner, part in shared if part]
    if len(shared) > 1:
        started = time.perf_counter()
        try:
            with shared[0][0].transaction() as conn:
                durables = [runner.handle_in(conn, part) for runner, part in shared]
        except Exception:  # noqa: BLE001 - each runner retries alone below, and reports its own error
            log.debug("shared consumer transaction failed; applying one consumer at a time", exc_info=True)
        else:
            for (runner, part), durable in zip(shared, durables, strict=True):
                runner._committed(durable)
                runner.finished(part, started)
                results[id(runner)] = len(part)
    for runner in runners:
        if id(runner) not in results:
            try:
                results[id(runner)] = runner.apply(batch)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, per runner
                results[id(runner)] = exc
    return results
