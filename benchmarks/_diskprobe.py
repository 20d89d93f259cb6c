"""A background probe of the disk's flush latency, to report beside request latencies.

The embedded store acknowledges an event only after its commit is on disk (SQLite
``synchronous=FULL`` fsyncs every commit), so when the disk stalls a flush for tens of
milliseconds, every request that arrives meanwhile waits too, whatever the server does.
:class:`DiskFlushProbe` measures that floor while a benchmark phase runs: it keeps a small
file next to the server's data and times ``os.fdatasync`` after a small overwrite every few
milliseconds, like a commit of one event would.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

from _openloop import pct

_MIB = 2**20


class DiskFlushProbe:
    """Time ``fdatasync`` of small overwrites in a file under ``directory``, in a background thread.

    Use as a context manager around the phase to observe: on entry it writes a ``span``-byte
    file (zeros, flushed once), then every ``interval`` seconds it writes ``size`` bytes at the
    next ``block``-aligned offset (wrapping around) and times ``os.fdatasync``; on exit it
    stops the thread and deletes the file. :meth:`summary` gives the figures afterwards, and
    :meth:`stall_intervals` when the stalls happened (on the ``time.perf_counter()`` clock).

    The thread sleeps between samples (it takes the GIL for a few microseconds per sample), so
    it costs the machine little CPU; it does add ``1 / interval`` small flushes per second to
    the disk's load. A sample that overruns its slot is not followed by a burst to catch up:
    the next one starts right away and the schedule continues from there.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        interval: float = 0.02,
        size: int = 600,
        span: int = 4 * _MIB,
        block: int = 4096,
        stall_threshold: float = 0.010,
    ) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.size = size
        self.span = span
        self.block = block
        #: A flush longer than this counts as a stall; only the excess counts as stall time.
        self.stall_threshold = stall_threshold
        #: Each sample's ``fdatasync`` (start, end) on the ``time.perf_counter()`` clock.
        self.spans: list[tuple[float, float]] = []
        #: The error that stopped the probe early, if any.
        self.error: OSError | None = None
        self.seconds = 0.0
        self._path: Path | None = None
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Self:
        fd, name = tempfile.mkstemp(prefix=".diskprobe-", dir=self.directory)
        self._fd, self._path = fd, Path(name)
        try:
            # Real zeros rather than posix_fallocate: fallocate leaves unwritten extents on
            # ext4, and the first write into each would then be a metadata change (a journal
            # commit per flush), which is not what an overwrite of a database page costs.
            zeros = bytes(_MIB)
            for offset in range(0, self.span, _MIB):
                os.pwrite(fd, zeros[: min(_MIB, self.span - offset)], offset)
            os.fsync(fd)
        except BaseException:
            self._close()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="disk-flush-probe", daemon=True)
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.seconds = time.perf_counter() - self._started
        self._close()
        if self.error is not None:
            print(f"disk flush probe stopped early: {self.error}", file=sys.stderr)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def _run(self) -> None:
        fd = self._fd
        assert fd is not None
        payload = os.urandom(self.size)
        slots = max(1, (self.span - self.size) // self.block + 1)
        spans = self.spans
        due = time.perf_counter()
        slot = 0
        try:
            while not self._stop.is_set():
                os.pwrite(fd, payload, slot * self.block)
                started = time.perf_counter()
                os.fdatasync(fd)
                done = time.perf_counter()
                spans.append((started, done))
                slot = (slot + 1) % slots
                due = max(due + self.interval, done)
                # Sleeps (a timed lock wait), so the thread costs nothing until it is due.
                self._stop.wait(due - time.perf_counter())
        except OSError as error:
            self.error = error

    def summary(self) -> dict[str, float | int]:
        """The figures so far: sample count, fdatasync p50/p99/max and stall time (ms).

        ``stall_ms`` sums, over all samples, how far each flush exceeded the stall threshold
        (10 ms by default); ``stalls`` counts the samples that did.
        """
        durations = [end - start for start, end in self.spans]
        over = [d - self.stall_threshold for d in durations if d > self.stall_threshold]
        return {
            "samples": len(durations),
            "p50_ms": pct(durations, 0.50),
            "p99_ms": pct(durations, 0.99),
            "max_ms": max(durations, default=float("nan")) * 1000,
            "stall_ms": sum(over) * 1000,
            "stalls": len(over),
        }

    def stall_intervals(self, threshold: float | None = None) -> list[tuple[float, float]]:
        """(start, end) on the ``time.perf_counter()`` clock of each flush that took longer
        than ``threshold`` seconds (by default :attr:`stall_threshold`), in time order."""
        limit = self.stall_threshold if threshold is None else threshold
        return [(start, end) for start, end in self.spans if end - start > limit]
