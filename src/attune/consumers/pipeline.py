"""Runs every consumer in background threads, woken when events are appended."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from attune.consumers.base import Consumer, ConsumerRunner, apply_together
from attune.log.protocol import EventLog
from attune.observability import metrics
from attune.observability.inflight import RequestsInFlight
from attune.storage.engine import is_sqlite, sqlite_file, wal_file
from attune.storage.writeout import start_writeout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pacing:
    """How consumer lanes share one process (and its GIL and SQLite write lock) with ingest.

    Ingest answers clients; consumers derive state and may lag and catch up (``/readyz``
    shows by how much). The two kinds of lane are paced differently:

    * the **realtime lane** (profiles, popularity, features, segments: requests wait for it
      and segment changes must show within milliseconds) starts as soon as it is woken and
      reads at most ``realtime_batch`` events per transaction, so each transaction stays
      short. While appends are arriving, its steps start at least ``realtime_interval``
      apart: a stream of single events is then handled a few at a time rather than one
      transaction each (at 200 events/s that halved the lane's CPU per event), and an event
      after a quiet spell is still handled at once. When it is behind by a full batch *and*
      appends are arriving it rests, ``realtime_rest_ratio`` times as long as its last step
      took: at that point it cannot keep up anyway, and resting gives the appends the CPU.
      Its batches are also cut to what it handled in ``busy_step`` seconds in its last
      steps while appends arrive (never fewer than ``busy_min_batch`` events), and in
      ``quiet_step`` seconds otherwise: a step holds the derived state's write lock (on
      SQLite) and the serving process's interpreter from start to commit; catching up 1,000
      events at a time held them for 100–360 ms.
    * a **bulk lane** (the lake) collects events for at least ``bulk_interval`` seconds
      between steps while it is at the head of the log, so a stream of small requests is
      handled in large batches (one Parquet file, not hundreds), and while appends are
      arriving it rests ``bulk_rest_ratio`` times as long as its last step took.

    Appends count as arriving for ``busy_window`` seconds after the last one; no rest is
    longer than ``max_rest``. Before each step a lane also waits up to
    ``defer_to_requests`` seconds for the HTTP requests being answered to finish: an append
    wakes the lanes while its own request is still being answered, and a lane starting at
    once competed with that very request for the interpreter.
    """

    realtime_batch: int = 1000
    realtime_interval: float = 0.01
    busy_step: float = 0.004
    busy_min_batch: int = 10
    quiet_step: float = 0.05
    bulk_batch: int = 5000
    bulk_interval: float = 1.0
    busy_window: float = 1.0
    realtime_rest_ratio: float = 4.0
    bulk_rest_ratio: float = 8.0
    max_rest: float = 1.0
    defer_to_requests: float = 0.005

    def rest(self, *, realtime: bool, busy: bool, full: bool, took: float, since_start: float) -> float:
        """Seconds a lane waits before its next step.

        ``full``: its last read was a full batch (more events are waiting); ``took``: how long
        its last step took; ``since_start``: seconds since that step started.
        """
        rest = 0.0
        if busy and full:
            ratio = self.realtime_rest_ratio if realtime else self.bulk_rest_ratio
            rest = min(ratio * took, self.max_rest)
        if realtime and busy and not full:
            rest = max(rest, self.realtime_interval - since_start)
        if not realtime and not full:
            rest = max(rest, self.bulk_interval - since_start)
        return max(rest, 0.0)

    def batch(self, *, realtime: bool, busy: bool, seconds_per_event: float) -> int:
        """Events the next step of a lane reads, given its recent cost per event."""
        if not realtime:
            return self.bulk_batch
        if seconds_per_event <= 0:
            return self.realtime_batch
        fits = (self.busy_step if busy else self.quiet_step) / seconds_per_event
        return max(self.busy_min_batch, min(self.realtime_batch, int(min(fits, self.realtime_batch))))


class Breather:
    """Rests a consumer's long stretch of Python work while requests are arriving.

    A thread of Python holds the interpreter while it runs; the serving process's event
    loop then gets it back only every few switch intervals, per step of every request.
    Called between pieces of such work, a breather sleeps ``rest`` seconds once ``work``
    seconds have passed since the last rest, but only while ``busy()`` says appends are
    arriving, so nothing slows down when nobody waits.
    """

    def __init__(
        self,
        busy: Callable[[], bool],
        *,
        work: float = 0.005,
        rest: float = 0.005,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.busy = busy
        self.work = work
        self.rest = rest
        self._clock = clock
        self._sleep = sleep
        self._since = clock()

    def __call__(self) -> None:
        """A point where the work may rest."""
        now = self._clock()
        if now - self._since < self.work:
            return
        if self.busy():
            self._sleep(self.rest)
        self._since = self._clock()


class _Lane:
    """Consumers that share one thread and one read of each batch."""

    def __init__(self, runners: list[ConsumerRunner], realtime: bool) -> None:
        self.runners = runners
        self.realtime = realtime
        self.wake = threading.Event()
        self.name = "+".join(r.consumer.name for r in runners)


class Pipeline:
    """All consumers of one installation, run in lanes.

    A lane is one thread that reads each batch from the log once and hands it to every
    consumer in the lane. The realtime consumers (profiles, popularity, …) share one lane;
    the other consumers (the lake, with its slow Parquet writes) share a bulk lane of their
    own, so they never delay realtime state. With :class:`Pacing` set (``attune serve`` sets
    it), lanes give way to ingest as described there; without, they run flat out.

    In the embedded mode ingest calls :meth:`notify` after each append, so consumers start
    at once; lanes also poll, so events appended by another process are picked up too.
    A failing consumer is retried with exponential backoff while its lane-mates go on.
    """

    def __init__(
        self,
        consumers: Iterable[Consumer],
        log_: EventLog,
        engine: Engine,
        *,
        poll_seconds: float = 0.5,
        flush_seconds: float = 5.0,
        batch_size: int = 5000,
        pacing: Pacing | None = None,
    ) -> None:
        self.log = log_
        self.runners = [ConsumerRunner(c, log_, engine, batch_size) for c in consumers]
        self.poll_seconds = poll_seconds
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self._single_writer = is_sqlite(engine)
        database = sqlite_file(engine)
        #: SQLite's WAL file: its writing-out is started after quiet steps (see _run).
        self._wal = wal_file(database) if database else None
        realtime = [r for r in self.runners if r.consumer.realtime]
        bulk = [r for r in self.runners if not r.consumer.realtime]
        self.lanes = [_Lane(group, flag) for group, flag in ((realtime, True), (bulk, False)) if group]
        #: When the last append was reported (:meth:`notify`), for pacing.
        self.last_append = float("-inf")
        #: HTTP requests being answered (counted by the API's middleware), for pacing.
        self.in_flight = RequestsInFlight()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.pacing = pacing

    @property
    def pacing(self) -> Pacing | None:
        """How lanes give way to ingest (None: flat out)."""
        return self._pacing

    @pacing.setter
    def pacing(self, pacing: Pacing | None) -> None:
        self._pacing = pacing
        # Each runner's long work outside transactions rests too while appends arrive.
        for runner in self.runners:
            runner.pause = None if pacing is None else Breather(self.busy)

    def busy(self) -> bool:
        """Whether appends are arriving (one was reported within ``pacing.busy_window``)."""
        return self.pacing is not None and time.monotonic() - self.last_append < self.pacing.busy_window

    def runner(self, name: str) -> ConsumerRunner:
        """The runner of the consumer called ``name``."""
        for runner in self.runners:
            if runner.consumer.name == name:
                return runner
        raise KeyError(name)

    def lane_batch(self, lane: _Lane, *, busy: bool = False, seconds_per_event: float = 0.0) -> int:
        """Events per read (and per consumer transaction) in ``lane``.

        Steps are cut by time only where a transaction holds a whole file's write lock
        (SQLite: the derived state's; readers of it wait, and a step is also that long a
        stretch of the serving process's interpreter): PostgreSQL locks rows, and short steps
        only cost it round trips (catch-up took twice as long).
        """
        if self.pacing is None:
            return self.batch_size
        if not self._single_writer:
            seconds_per_event = 0.0
        return self.pacing.batch(realtime=lane.realtime, busy=busy, seconds_per_event=seconds_per_event)

    # -- background mode -------------------------------------------------
    def start(self) -> None:
        """Start one thread per lane."""
        self._stop.clear()
        for lane in self.lanes:
            thread = threading.Thread(
                target=self._run, args=(lane,), name=f"consumers-{lane.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads after their current batch and flush buffered work."""
        self._stop.set()
        for lane in self.lanes:
            lane.wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        for runner in self.runners:
            try:
                runner.flush()
            except Exception:
                log.exception("flush of consumer %s failed on shutdown", runner.consumer.name)

    def notify(self) -> None:
        """Wake every lane: new events are in the log."""
        self.last_append = time.monotonic()
        for lane in self.lanes:
            lane.wake.set()

    def flush_interval(self, runner: ConsumerRunner) -> float:
        """Seconds between flushes of ``runner``: its consumer's ``flush_seconds``, else the pipeline's."""
        return getattr(runner.consumer, "flush_seconds", None) or self.flush_seconds

    def _run(self, lane: _Lane) -> None:
        retry_at = {id(r): 0.0 for r in lane.runners}
        backoff = {id(r): 0.1 for r in lane.runners}
        next_flush = {id(r): time.monotonic() + self.flush_interval(r) for r in lane.runners}
        last_start, last_took, full = float("-inf"), 0.0, False
        #: Seconds per event of recent steps (a moving average), for the batch size while busy.
        per_event = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            active = [r for r in lane.runners if retry_at[id(r)] <= now]
            handled = 0
            busy = self.busy()
            if active and self.pacing is not None:
                rest = self.pacing.rest(
                    realtime=lane.realtime,
                    busy=busy,
                    full=full,
                    took=last_took,
                    since_start=now - last_start,
                )
                if rest > 0 and self._stop.wait(rest):
                    break
                if self.pacing.defer_to_requests > 0:
                    self.in_flight.wait_quiet(self.pacing.defer_to_requests)
            if active:
                started = time.monotonic()
                limit = self.lane_batch(lane, busy=busy, seconds_per_event=per_event)
                try:
                    batch = self.log.read(min(r.cursor for r in active), limit)
                except Exception:
                    log.exception("reading the event log failed; retrying")
                    batch = []
                    self._stop.wait(1.0)
                outcomes = apply_together(active, batch)
                for runner in active:
                    outcome = outcomes[id(runner)]
                    if isinstance(outcome, int):
                        handled += outcome
                        backoff[id(runner)] = 0.1
                        continue
                    delay = backoff[id(runner)]
                    log.error(
                        "consumer %s failed; retrying in %.1fs",
                        runner.consumer.name,
                        delay,
                        exc_info=(type(outcome), outcome, outcome.__traceback__),
                    )
                    metrics.CONSUMER_ERRORS.labels(runner.consumer.name).inc()
                    retry_at[id(runner)] = time.monotonic() + delay
                    backoff[id(runner)] = min(delay * 2, 30.0)
                if batch and not busy and self._wal is not None:
                    # Nobody waits now; an append's flush later would write all of this out.
                    start_writeout(self._wal)
                if batch:
                    last_start, last_took, full = started, time.monotonic() - started, len(batch) >= limit
                    # Only full batches measure the cost per event: a step's fixed cost would
                    # make a batch of two look expensive.
                    if full:
                        cost = last_took / len(batch)
                        per_event = cost if per_event == 0.0 else 0.5 * per_event + 0.5 * cost
            if handled:
                with self._changed:
                    self._changed.notify_all()
            for runner in lane.runners:
                if time.monotonic() >= next_flush[id(runner)]:
                    try:
                        runner.flush()
                    except Exception:
                        log.exception("flush of consumer %s failed", runner.consumer.name)
                    next_flush[id(runner)] = time.monotonic() + self.flush_interval(runner)
            if not handled:
                full = False
                next_retry = min(retry_at.values()) - time.monotonic()
                lane.wake.wait(
                    max(0.0, min(self.poll_seconds, next_retry)) if next_retry > 0 else self.poll_seconds
                )
                lane.wake.clear()

    def wait_for(self, offset: int, timeout: float = 5.0) -> bool:
        """Block until every realtime consumer has handled ``offset`` (read-your-writes)."""
        deadline = time.monotonic() + timeout
        realtime = [r for r in self.runners if r.consumer.realtime]
        with self._changed:
            while any(r.cursor < offset for r in realtime):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.05))
        return True

    # -- foreground mode -------------------------------------------------
    def drain(self) -> int:
        """Bring every consumer to the head of the log, in this thread; return deliveries."""
        total = 0
        for lane in self.lanes:
            while True:
                batch = self.log.read(min(r.cursor for r in lane.runners), self.batch_size)
                if not batch:
                    break
                total += sum(runner.apply(batch) for runner in lane.runners)
            for runner in lane.runners:
                runner.flush()
        return total

    def replay(self) -> int:
        """Delete all derived state and rebuild it from the whole log."""
        for runner in self.runners:
            runner.reset()
        return self.drain()
