"""One writer at a time per SQLite database, appends first within a process.

SQLite has a single write lock per database. When two connections of one process want it at
once, the loser does not queue: it sleeps in SQLite's busy handler (1, 2, 5, 10, … 100 ms
steps) and tries again, so a single-event append that arrived during a consumer's commit
waited up to tens of milliseconds after the lock was already free. A consumer transaction
that read first and wrote second could also fail outright (``SQLITE_BUSY_SNAPSHOT``) when an
append committed in between. The gate makes this process's writers queue in Python instead,
where the hand-over is immediate and appends (whose callers wait for the answer) go before
consumers (who only fall behind a little and catch up). Processes sharing the database (the
serving process and its ingest workers) queue behind one another on a ``flock`` of a file
beside it (``attune.db-gate``), which the kernel hands over as promptly.

Gates belong to database *files*. On SQLite the event log has a file of its own (see
:mod:`attune.storage.engine`), so :func:`write_gate` takes a ``scope``: ``"log"`` (appends,
registering subjects), ``"main"`` (consumers' derived state) or ``"all"`` (the default:
writers that may touch both, such as erasure; they take the main gate first, then the
log's, so no two writers ever wait for each other in a circle).

PostgreSQL locks rows, not the database: its gate lets everyone through.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine

from attune.storage.engine import log_file, sqlite_file


class WriteGate:
    """A lock with two classes of waiters: urgent ones (appends) always go first.

    With ``lock_path`` the holder also takes an exclusive ``flock`` on that file, so the
    writers of *other* processes on the same database (ingest workers, see
    :mod:`attune.ingest.workers`) queue in the kernel too, woken the moment the lock is free,
    instead of polling in SQLite's busy handler. Priorities hold within a process only.
    """

    def __init__(self, lock_path: Path | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._urgent_waiting = 0
        self._waiting = 0
        self._fd: int | None = None
        if lock_path is not None:
            self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    @property
    def waiting(self) -> int:
        """How many threads wait for the gate now."""
        return self._waiting

    @contextmanager
    def hold(self, *, urgent: bool) -> Iterator[None]:
        """Hold the gate for the duration of the block."""
        with self._cond:
            self._waiting += 1
            if urgent:
                self._urgent_waiting += 1
                try:
                    while self._held:
                        self._cond.wait()
                finally:
                    self._urgent_waiting -= 1
                    self._waiting -= 1
            else:
                try:
                    while self._held or self._urgent_waiting:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
            self._held = True
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without the GIL
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()


class _BothGates(WriteGate):
    """Holds two files' gates, always in the same order (the main database's first)."""

    def __init__(self, first: WriteGate, second: WriteGate) -> None:
        self.gates = (first, second)

    @property
    def waiting(self) -> int:
        """How many threads wait for either gate now."""
        return sum(gate.waiting for gate in self.gates)

    @contextmanager
    def hold(self, *, urgent: bool) -> Iterator[None]:
        """Hold both gates for the duration of the block."""
        with ExitStack() as stack:
            for gate in self.gates:
                stack.enter_context(gate.hold(urgent=urgent))
            yield


class _OpenGate(WriteGate):
    """Lets everyone through (databases that lock rows rather than the whole file)."""

    @contextmanager
    def hold(self, *, urgent: bool) -> Iterator[None]:
        """Do nothing around the block."""
        yield


_OPEN = _OpenGate()
#: By database file (or URL for in-memory ones): every engine on one file shares one gate.
_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


def _file_gate(key: str, database: Path | None) -> WriteGate:
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriteGate(database.with_name(f"{database.name}-gate") if database else None)
        return gate


def write_gate(engine: Engine, scope: Literal["all", "main", "log"] = "all") -> WriteGate:
    """The gate shared by every writer of ``engine``'s database files in this process.

    ``scope`` picks the files (see the module docstring); where the log has no file of its
    own, every scope is the one gate of the engine's database.
    """
    if engine.dialect.name != "sqlite":
        return _OPEN
    database = sqlite_file(engine)
    main = _file_gate(str(database) if database else str(engine.url), database)
    log = log_file(engine)
    if log is None or scope == "main":
        return main
    log_gate = _file_gate(str(log), log)
    return log_gate if scope == "log" else _BothGates(main, log_gate)
