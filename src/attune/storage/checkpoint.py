"""WAL checkpoints in a background thread, so no commit has to run one.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit copies the WAL into the database file and fsyncs it, ~100 ms after a large consumer
transaction, while every append waited at the write gate. ``attune serve`` switches the
automatic checkpoint off on its connections (``make_engine(..., wal_autocheckpoint=0)``)
and runs :class:`WalCheckpointer` instead: ``PASSIVE`` checkpoints take no lock that writers
wait for, and sqlite3 runs them without the GIL.

PASSIVE alone never lets the WAL *file* shrink under steady traffic: SQLite restarts the WAL
from its beginning only when a write starts after a checkpoint that copied every frame, and
with writes every few milliseconds there is always a frame newer than the last checkpoint
(1.7 GB after a 10-second burst and a minute of single events). So once the WAL file is past
``restart_bytes`` the checkpointer follows its PASSIVE run with a RESTART one while holding
the write gate: it copies the few frames written meanwhile, waits (at most
``restart_wait_ms``, 20 by default) for readers of old snapshots, and the next write
starts the WAL over (cut back to ``journal_size_limit``). The wait is short because appends
wait with it: right after a burst, a restart that waited 200 ms for the consumers' reads
held every single-event append for 180 ms; a restart that gives up is tried again a
second later, when the readers are likely elsewhere.
Appends queue at the gate for those milliseconds instead of polling in SQLite's busy handler.
While no appends arrive (``busy()`` is false), checkpoints run every ``quiet_interval``
seconds instead: a consumer catching up after a burst writes ~80 MB of WAL a second, and
the checkpoint copying the last second of it as single events resumed took 95 ms of the
disk and a core, and their commits 4–10 ms each; copied a quarter second at a time, little
is left when appends resume.
On SQLite the event log has a file of its own (:mod:`attune.storage.engine`);
:func:`start_checkpointers` runs one checkpointer per file, each holding only its file's
writers for a restart.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from sqlalchemy import Engine

from attune.log.gate import write_gate
from attune.storage.engine import log_file, sqlite_file, wal_file
from attune.storage.writeout import paced_sync

log = logging.getLogger(__name__)

#: WAL file size past which a checkpoint also restarts the WAL.
RESTART_BYTES = 64 * 1024 * 1024


class WalCheckpointer:
    """Checkpoints one SQLite database's WAL every ``interval`` seconds (PASSIVE; every
    ``quiet_interval`` while ``busy()`` is false) until stopped, restarting the WAL once its
    file is past ``restart_bytes`` (under ``hold_writers()``)."""

    def __init__(
        self,
        database: Path,
        interval: float = 1.0,
        *,
        quiet_interval: float = 0.25,
        restart_bytes: int = RESTART_BYTES,
        restart_wait_ms: float = 20,
        hold_writers: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.database = database
        self.interval = interval
        self.quiet_interval = quiet_interval
        #: Whether appends are arriving (:meth:`attune.consumers.pipeline.Pipeline.busy`);
        #: until one is set, always.
        self.busy: Callable[[], bool] = _always
        self.restart_bytes = restart_bytes
        self.restart_wait_ms = restart_wait_ms
        self.hold_writers = hold_writers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Checkpoints run so far (for tests and metrics).
        self.runs = 0
        #: Of which restarted the WAL.
        self.restarts = 0

    def start(self) -> None:
        """Start the background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (and a RESTART when the WAL file is large): (busy, frames in
        the WAL, frames copied to the database) of the last one run."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        self._sync_database()
        if self._wal_bytes() > self.restart_bytes:
            # Writers wait meanwhile: a long reader (a training run loading interactions) is
            # waited for at most restart_wait_ms, then the restart is tried again next time.
            conn.execute(f"PRAGMA busy_timeout = {int(self.restart_wait_ms)}")
            try:
                with self.hold_writers():
                    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute("PRAGMA busy_timeout = 30000")
            self.restarts += 1
        return busy, frames, copied

    def _sync_database(self) -> None:
        """Write the pages just copied to the database file out to disk, here and now.

        A PASSIVE checkpoint syncs the database file only when it copied every frame, which
        under steady writes it never does: the pages it copied stayed in the page cache (70
        MB after a burst), the kernel wrote them out in bulk every few seconds while appends
        waited for their own flushes, and a RESTART (under the write gate) had to flush them
        all first: appends waited 140 ms. Synced after each run, each flush is a second's
        worth, written out in paced pieces (:func:`paced_sync`) so appends' own flushes are
        not queued behind all of it.
        """
        try:
            fd = os.open(self.database, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            paced_sync(fd)  # without the GIL, outside the write gate
        finally:
            os.close(fd)

    def _wal_bytes(self) -> int:
        try:
            return wal_file(self.database).stat().st_size
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        conn = sqlite3.connect(self.database, timeout=30, check_same_thread=False)
        try:
            while True:
                stopping = self._stop.wait(self.interval if self.busy() else self.quiet_interval)
                try:
                    self.checkpoint(conn)
                except sqlite3.Error:
                    log.exception("WAL checkpoint of %s failed; retrying", self.database)
                if stopping:
                    return
        finally:
            conn.close()


def _always() -> bool:
    return True


def start_checkpointers(engine: Engine) -> list[WalCheckpointer]:
    """Start a checkpointer for each SQLite file of ``engine`` (its database's, its event
    log's); none for other stores."""
    started = []
    for path, scope in ((sqlite_file(engine), "main"), (log_file(engine), "log")):
        if path is None:
            continue
        gate = write_gate(engine, scope)
        checkpointer = WalCheckpointer(path, hold_writers=lambda gate=gate: gate.hold(urgent=False))
        checkpointer.start()
        started.append(checkpointer)
    return started
