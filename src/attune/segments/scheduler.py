"""The lapse scheduler: re-evaluates people when a sliding window moves past one of their events.

A membership such as ``exists(view, window=1h)`` ends an hour after the last view with no
new event to trigger anything. After every evaluation the engine asks the feature store when
that person's windowed values next change (``FeatureStore.next_expiry``) and schedules them
here; a background thread wakes at the earliest instant and hands the due people back.

A heap of ``(instant, subject_key)`` with lazy deletion: rescheduling a person only records
the new instant; stale heap entries are skipped when popped.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class LapseScheduler:
    """Keeps the next lapse instant of every person and fires ``on_due(keys, now)`` on time."""

    def __init__(
        self,
        on_due: Callable[[list[str], float], None],
        *,
        clock: Callable[[], float] = time.time,
        max_sleep: float = 1.0,
    ) -> None:
        self.on_due = on_due
        self.clock = clock
        #: Longest real-time sleep between checks (bounds the effect of clock jumps).
        self.max_sleep = max_sleep
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def schedule(self, key: str, at: float | None) -> None:
        """Re-evaluate ``key`` at ``at`` (``None`` cancels its pending lapse)."""
        with self._lock:
            if at is None:
                self._due.pop(key, None)
                return
            if self._due.get(key) == at:
                return
            self._due[key] = at
            heapq.heappush(self._heap, (at, key))
            earliest = self._heap[0][0] == at
        if earliest:
            self._wake.set()

    def schedule_many(self, items: Iterable[tuple[str, float | None]]) -> None:
        """:meth:`schedule` for many people at once."""
        for key, at in items:
            self.schedule(key, at)

    def next_at(self) -> float | None:
        """The earliest pending instant, or ``None``."""
        with self._lock:
            self._discard_stale()
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._due)

    def pop_due(self, now: float) -> list[str]:
        """Remove and return the people whose instant is at or before ``now``."""
        due: list[str] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                at, key = heapq.heappop(self._heap)
                if self._due.get(key) == at:
                    del self._due[key]
                    due.append(key)
        return due

    def run_due(self) -> int:
        """Fire ``on_due`` for everyone due by the clock now; return how many."""
        now = self.clock()
        keys = self.pop_due(now)
        if keys:
            self.on_due(keys, now)
        return len(keys)

    def clear(self) -> None:
        """Forget every pending lapse."""
        with self._lock:
            self._heap.clear()
            self._due.clear()

    def _discard_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    # -- background mode -------------------------------------------------------------
    def start(self) -> None:
        """Fire due lapses from a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="segment-lapses", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the clock now (a test clock moved, or an earlier lapse was scheduled)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread; pending lapses stay scheduled in memory."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - keep scheduling; the failed people are retried
                log.exception("segment lapse evaluation failed")
                self._stop.wait(1.0)
            upcoming = self.next_at()
            sleep = self.max_sleep if upcoming is None else min(self.max_sleep, max(0.0, upcoming - self.clock()))
            if sleep > 0:
                self._wake.wait(sleep)
            self._wake.clear()
