"""WAL checkpoints in a background thread, so no commit has to run one.

By default SQLite checkpoints inside the commit that pushes the WAL past 1,000 pages: that
commit copies the WAL into the database file and fsyncs it, ~100 ms after a large consumer
transaction, while every append waited at the write gate. ``attune serve`` switches the
automatic checkpoint off on its connections (``make_engine(..., wal_autocheckpoint=0)``)
and runs :class:`WalCheckpointer` instead: ``PASSIVE`` checkpoints take no lock that writers
wait for, and sqlite3 runs them without the GIL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints one SQLite database's WAL every ``interval`` seconds (PASSIVE) until stopped."""

    def __init__(self, database: Path, interval: float = 1.0) -> None:
        self.database = database
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Checkpoints run so far (for tests and metrics).
        self.runs = 0

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
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames copied to the database)."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        return busy, frames, copied

    def _run(self) -> None:
        conn = sqlite3.connect(self.database, timeout=30, check_same_thread=False)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    self.checkpoint(conn)
                except sqlite3.Error:
                    log.exception("WAL checkpoint of %s failed; retrying", self.database)
                if stopping:
                    return
        finally:
            conn.close()
