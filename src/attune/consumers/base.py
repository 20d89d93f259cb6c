"""The consumer protocol and the runner that feeds a consumer from the log."""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from typing import Protocol

from sqlalchemy import Connection, Engine

from attune.events.model import LoggedEvent
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

    def step(self) -> int:
        """Read and process at most one batch; return how many events were handled."""
        return self.apply(self.log.read(self.cursor, self.batch_size))

    def apply(self, batch: list[LoggedEvent]) -> int:
        """Process the part of ``batch`` after this runner's cursor; return how many events.

        Batches read once can be shared by several runners: each takes what it has not seen.
        """
        if batch and batch[0].offset <= self.cursor:
            batch = batch[bisect_right(batch, self.cursor, key=_offset) :]
        if not batch:
            return 0
        started = time.perf_counter()
        with self.engine.begin() as conn:
            durable = self.consumer.handle(batch, conn)
            if durable is not None and durable > self.position:
                set_position(conn, self.consumer.name, durable)
        if durable is not None and durable > self.position:
            self.position = durable
        self.cursor = batch[-1].offset
        metrics.CONSUMER_EVENTS.labels(self.consumer.name).inc(len(batch))
        metrics.CONSUMER_BATCH_SECONDS.labels(self.consumer.name).observe(time.perf_counter() - started)
        metrics.CONSUMER_POSITION.labels(self.consumer.name).set(self.cursor)
        return len(batch)

    def flush(self) -> None:
        """Ask the consumer to make buffered work durable and commit the position."""
        with self.engine.begin() as conn:
            durable = self.consumer.flush(conn)
            if durable is not None and durable > self.position:
                set_position(conn, self.consumer.name, durable)
        if durable is not None and durable > self.position:
            self.position = durable

    def drain(self) -> int:
        """Process until the log's head as seen now; return the number handled."""
        total = 0
        while (handled := self.step()) > 0:
            total += handled
        self.flush()
        return total

    def reset(self) -> None:
        """Forget all derived state and start again from offset 0."""
        with self.engine.begin() as conn:
            self.consumer.reset(conn)
            set_position(conn, self.consumer.name, 0)
        self.position = self.cursor = 0


def _offset(logged: LoggedEvent) -> int:
    return logged.offset
