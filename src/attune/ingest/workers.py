"""Ingest workers: event batches validated and appended in processes beside the serving one.

One Python process runs Python code on one core at a time. Checking, normalizing,
pseudonymizing and appending a 1,000-event batch is tens of milliseconds of Python, so a
serving process that also answers single events and runs the consumers tops out at one core
of ingestion. ``attune serve`` therefore hands each ``POST /v1/events`` body to one of a
few worker processes, which do everything :func:`attune.ingest.body.ingest_events_body` does
on their own interpreter and their own connection to the store, and answer with the report.
The serving process keeps what must be one per installation:

* **sessions**: a worker asks the serving process's :class:`SessionTracker` for the session
  ids of a batch (one round trip per batch), so a person's events share a session whichever
  process handles them;
* **metrics**: the worker's counter updates travel back with each answer and are counted in
  the serving process, which ``/metrics`` reads;
* **consumers**: the serving process is told of each append and wakes them at once.

Privacy caches stay correct across processes through :class:`PrivacyChanges`: a consent
decision or an erasure anywhere bumps a shared counter, and every process clears what the
change may have made stale before its next batch.

Nothing acknowledged is lost: a worker answers only after its transaction committed, and the
serving process acknowledges only what a worker answered. A worker that dies mid-batch costs
that request a 503 (resending is safe: event ids deduplicate) and is replaced.

Requests that wait while every worker is busy travel together: the next worker free takes
all of them (up to ``MAX_COALESCED`` requests, ``MAX_COALESCED_BYTES`` of bodies) in one
message and appends them in one group commit. A disk flush that stalls for 50–100 ms (this
machine's disk does so every few seconds, idle or not) holds up every request that arrives
meanwhile; coalesced, the queue it leaves is written with one more fsync instead of one
each, so the requests behind the stall do not wait for one another as well.

The protocol over each duplex pipe (pickled tuples):

* serving -> worker: ``("batch", [request, ...])`` where a request is ``("ingest", body)``
  or ``("events", events, source, now)``; ``("stop",)``
* worker -> serving: ``("ready", pid)``; ``("sessions", [(person, ts), ...])``, answered with
  the list of session ids; ``("done", [outcome, ...], metric_calls)`` with one outcome per
  request, in order: ``("ok", report)`` or ``("error", error_class_name, message, errors)``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

from attune import errors as attune_errors
from attune.errors import AttuneError, Unavailable
from attune.events.enrich import SessionTracker
from attune.ingest.service import IngestReport
from attune.observability import metrics
from attune.privacy.changes import PrivacyChanges
from attune.settings import Settings

log = logging.getLogger(__name__)

#: Longest a worker may take to start (import, open the store) or to answer one batch.
STARTUP_SECONDS = 120.0
ANSWER_SECONDS = 120.0

#: Most requests (and bytes of request bodies) one worker takes in one message.
MAX_COALESCED = 32
MAX_COALESCED_BYTES = 4 * 1024 * 1024

MetricCall = tuple[str, tuple[str, ...], str, float]
Outcome = tuple[Any, ...]


def default_worker_count(cpus: int | None = None) -> int:
    """Workers when ``ingest.workers`` is unset: one per core (at most 4), none on one core.

    One per core, not one per core beyond the first: during a burst the serving process
    mostly waits for its workers (its consumers rest while appends arrive), and on 2 cores
    two workers ingested 25,000 events/s where one managed 14,600
    (``benchmarks/ingest.py --ingest-workers N``).
    """
    cpus = (os.cpu_count() if cpus is None else cpus) or 1
    return 0 if cpus < 2 else min(4, cpus)


class _Worker:
    """One worker process and the serving process's end of its pipe."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        #: Held while the worker is retired: two threads reaping one child race in waitpid,
        #: and the loser saw a dead process as alive.
        self.retiring = threading.Lock()
        self.retired = False


class _Ticket:
    """One request waiting for a worker, and its outcome once a worker answered it."""

    __slots__ = ("done", "error", "report", "request", "size", "taken")

    def __init__(self, request: tuple[Any, ...]) -> None:
        self.request = request
        self.size = len(request[1]) if request[0] == "ingest" else 0
        self.taken = False
        self.report: IngestReport | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class IngestWorkers:
    """The serving process's pool of ingest workers (see the module docstring).

    Workers start in the background: until the first is ready, :meth:`ingest_body` returns
    ``None`` and the caller ingests in its own process, so serving starts at once.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: SessionTracker,
        changes: PrivacyChanges,
        count: int,
        *,
        context: BaseContext,
        background_checkpoints: bool = False,
        on_append: Callable[[], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("an ingest worker pool needs at least one worker")
        self.settings = settings
        self.sessions = sessions
        self.changes = changes
        self.count = count
        self.on_append = on_append
        self._context = context
        self._background_checkpoints = background_checkpoints
        #: Idle workers and requests waiting for one, both under ``_dispatch``.
        self._dispatch = threading.Condition(threading.Lock())
        self._idle: list[_Worker] = []
        self._waiting: list[_Ticket] = []
        self._ready = threading.Event()
        #: Live workers that have started, under ``_started``.
        self._ready_count = 0
        self._started = threading.Condition()
        self._closed = False
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        for _ in range(count):
            self._start_worker()

    @property
    def ready(self) -> bool:
        """True once at least one worker can take batches."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float = STARTUP_SECONDS, *, every: bool = False) -> bool:
        """Block until a worker (``every``: each worker) is ready; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._started:
            while self._ready_count < (self.count if every else 1):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._started.wait(remaining)
        return True

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    # -- serving -------------------------------------------------------------------
    def ingest_body(self, raw: bytes) -> IngestReport | None:
        """Ingest a ``POST /v1/events`` body in a worker; ``None`` while none is ready.

        Blocks while every worker is busy (backpressure: the batch waits its turn, as it would
        for the store's write lock). Raises the same errors as in-process ingestion, and
        :class:`Unavailable` when the worker died on this batch.
        """
        return self._ingest(("ingest", raw))

    def ingest_events(self, events: list[Any], *, source: str, now: float | None = None) -> IngestReport | None:
        """Ingest already-parsed events (Segment's endpoints map their messages first) in a
        worker, as ``IngestService.ingest(events, source=source, now=now)``; ``None`` while none is ready."""
        return self._ingest(("events", events, source, now))

    def _ingest(self, request: tuple[Any, ...]) -> IngestReport | None:
        if not self._ready.is_set() or self._closed:
            return None
        ticket = _Ticket(request)
        with self._dispatch:
            self._waiting.append(ticket)
        # Whoever finds a worker idle takes the oldest waiting requests, which may not include
        # its own (more were waiting than fit in one message): it then tries again.
        while not ticket.taken:
            worker, batch = self._take(ticket)
            if worker is None:
                break
            self._run(worker, batch)
        # Another caller's worker may carry this ticket; it is answered as soon as theirs.
        if not ticket.done.wait(ANSWER_SECONDS + 10):
            raise Unavailable("no ingest worker answered in time; send the batch again shortly")
        if ticket.error is not None:
            raise ticket.error
        report = ticket.report
        assert report is not None
        if report.accepted and self.on_append is not None:
            self.on_append()
        return report

    def _take(self, ticket: _Ticket) -> tuple[_Worker | None, list[_Ticket]]:
        """Wait until ``ticket`` is taken or a worker is idle; take that worker with the
        oldest waiting requests.

        Returns ``(None, [])`` when another caller took ``ticket`` along with its own.
        """
        deadline = time.monotonic() + ANSWER_SECONDS
        with self._dispatch:
            while not ticket.taken:
                if self._closed:
                    self._waiting.remove(ticket)
                    raise Unavailable("the server is stopping; send the batch again shortly")
                if self._idle:
                    return self._idle.pop(0), self._take_waiting()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._waiting.remove(ticket)
                    raise Unavailable("no ingest worker is available; send the batch again shortly")
                self._dispatch.wait(remaining)
        return None, []

    def _take_waiting(self) -> list[_Ticket]:
        """The oldest waiting requests that fit in one message (at least one); under ``_dispatch``."""
        batch: list[_Ticket] = []
        size = 0
        while self._waiting and len(batch) < MAX_COALESCED:
            ticket = self._waiting[0]
            if batch and size + ticket.size > MAX_COALESCED_BYTES:
                break
            self._waiting.pop(0)
            ticket.taken = True
            batch.append(ticket)
            size += ticket.size
        return batch

    def _give_back(self, worker: _Worker) -> None:
        with self._dispatch:
            self._idle.append(worker)
            self._dispatch.notify_all()

    def _run(self, worker: _Worker, batch: list[_Ticket]) -> None:
        """Have ``worker`` handle ``batch``; every ticket in it is answered (or failed) on return."""
        metrics.INGEST_WORKER_REQUESTS.observe(len(batch))
        try:
            outcomes = self._exchange(worker, [ticket.request for ticket in batch])
        except Exception as exc:  # noqa: BLE001 - a dead, hung or confused worker is replaced
            log.error("ingest worker %s failed on a batch (%r); starting another", worker.process.pid, exc)
            self._retire(worker)
            if not self._closed:
                self._start_worker()
            for ticket in batch:
                ticket.error = Unavailable(
                    "an ingest worker stopped while handling this batch; send it again "
                    "(event ids make resending safe)"
                )
                ticket.done.set()
            return
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if outcome[0] == "ok":
                ticket.report = outcome[1]
            else:
                ticket.error = _error(outcome)
            ticket.done.set()
        self._give_back(worker)

    def _exchange(self, worker: _Worker, requests: list[tuple[Any, ...]]) -> list[Outcome]:
        conn = worker.conn
        conn.send(("batch", requests))
        while True:
            if not conn.poll(ANSWER_SECONDS):
                raise TimeoutError(f"no answer within {ANSWER_SECONDS:.0f} s")
            message = conn.recv()
            kind = message[0]
            if kind == "sessions":
                conn.send(self.sessions.assign_many(message[1]))
            elif kind == "done" and len(message[1]) == len(requests):
                _replay_metrics(message[2])
                return message[1]
            else:
                raise OSError(f"unexpected message from an ingest worker: {kind!r}")

    # -- lifecycle -----------------------------------------------------------------
    def _start_worker(self) -> None:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(self.settings, child_end, self.changes, self._background_checkpoints),
            name="attune-ingest",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        with self._lock:
            self._workers.append(worker)
        threading.Thread(target=self._await_ready, args=(worker,), daemon=True, name="ingest-worker-start").start()

    def _await_ready(self, worker: _Worker) -> None:
        try:
            if worker.conn.poll(STARTUP_SECONDS):
                message = worker.conn.recv()
                if message[0] == "ready" and not self._closed:
                    self._give_back(worker)
                    self._ready.set()
                    with self._started:
                        worker.ready = True
                        self._ready_count += 1
                        self._started.notify_all()
                    return
        except (EOFError, OSError):
            pass
        if not self._closed:
            log.error("an ingest worker did not start (exit code %s); batches stay in the serving process",
                      worker.process.exitcode)
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        with self._started:
            if worker.ready:
                worker.ready = False
                self._ready_count -= 1
        with worker.retiring:  # a second caller returns once the first has reaped it
            if worker.retired:
                return
            with contextlib.suppress(OSError):
                worker.conn.close()
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(timeout=5)
            worker.retired = True

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker after its current batch (those still busy after ``timeout`` are killed)."""
        self._closed = True
        with self._dispatch:
            self._dispatch.notify_all()  # requests still waiting for a worker give up
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if not worker.ready:  # still starting: nothing in flight
                self._retire(worker)
        workers = [w for w in workers if w.ready]
        # Only idle workers are told to stop: a busy one's pipe belongs to its request until
        # the answer (a stop message could cross a session query). No new request takes one.
        stopped = 0
        while stopped < len(workers):
            with self._dispatch:
                while not self._idle and time.monotonic() < deadline:
                    self._dispatch.wait(max(0.0, deadline - time.monotonic()))
                if not self._idle:
                    break
                worker = self._idle.pop()
            with contextlib.suppress(OSError):
                worker.conn.send(("stop",))
            stopped += 1
        for worker in workers:
            worker.process.join(timeout=max(0.1, deadline - time.monotonic()))
            self._retire(worker)


def _error(outcome: Outcome) -> AttuneError:
    """The error a worker reported for one request, as the class it named."""
    _, class_name, message, errors = outcome
    error_class = getattr(attune_errors, class_name, AttuneError)
    if not (isinstance(error_class, type) and issubclass(error_class, AttuneError)):
        error_class = AttuneError
    return error_class(message, errors=errors)


def _replay_metrics(calls: list[MetricCall]) -> None:
    """Count a worker's metric updates in this process's registry."""
    for name, labels, method, value in calls:
        metric = getattr(metrics, name)
        if labels:
            metric = metric.labels(*labels)
        getattr(metric, method)(value)


class _MetricTap:
    """Stands in for a metric in a worker: records each update for the serving process."""

    def __init__(self, name: str, calls: list[MetricCall], labels: tuple[str, ...] = ()) -> None:
        self._name, self._calls, self._labels = name, calls, labels

    def labels(self, *values: str) -> _MetricTap:
        return _MetricTap(self._name, self._calls, tuple(str(v) for v in values))

    def inc(self, amount: float = 1) -> None:
        self._calls.append((self._name, self._labels, "inc", amount))

    def observe(self, value: float) -> None:
        self._calls.append((self._name, self._labels, "observe", value))

    def set(self, value: float) -> None:
        self._calls.append((self._name, self._labels, "set", value))


def _tap_metrics(calls: list[MetricCall]) -> None:
    from prometheus_client.metrics import MetricWrapperBase

    for name, value in list(vars(metrics).items()):
        if isinstance(value, MetricWrapperBase):
            setattr(metrics, name, _MetricTap(name, calls))


class RemoteSessions(SessionTracker):
    """A worker's session tracker: asks the serving process's tracker over the pipe."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(timeout=0)
        self.conn = conn
        #: Coalesced requests are prepared in threads; one question is on the pipe at a time.
        self._asking = threading.Lock()

    def assign(self, person: str, ts: float) -> str:
        """The session id of ``person`` at ``ts``, as the serving process assigns it."""
        return self.assign_many([(person, ts)])[0]

    def assign_many(self, activity: list[tuple[str, float]]) -> list[str]:
        """Session ids for (person, ts) pairs, in one round trip."""
        with self._asking:
            self.conn.send(("sessions", activity))
            return self.conn.recv()


def worker_main(settings: Settings, conn: Connection, changes: PrivacyChanges, background_checkpoints: bool) -> None:
    """A worker process: open the store, then ingest bodies until told to stop."""
    from attune.ingest.body import ingest_events_body
    from attune.ingest.service import IngestService
    from attune.log.sql import SqlEventLog
    from attune.observability.logging import configure_logging
    from attune.privacy.services import Privacy
    from attune.profiles.identity import SubjectKeys
    from attune.storage.engine import dispose, make_engine

    # Ctrl-C reaches the whole process group; the serving process stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    url = settings.resolved_database_url
    engine = make_engine(
        url,
        sqlite_synchronous=settings.sqlite_synchronous,
        wal_autocheckpoint=0 if background_checkpoints and url.startswith("sqlite") else None,
    )
    subject_keys = SubjectKeys()
    privacy = Privacy.open(settings, engine, subject_keys)
    privacy.consent.shared = changes.consent
    service = IngestService(
        settings.ingest,
        SqlEventLog(engine, subject_keys),
        transform=privacy.ingest_transform,
        sessions=RemoteSessions(conn),
    )
    calls: list[MetricCall] = []
    _tap_metrics(calls)
    erasures_seen = changes.erasures.value

    def handle(request: tuple[Any, ...]) -> Outcome:
        try:
            if request[0] == "ingest":
                return ("ok", ingest_events_body(service, request[1]))
            _, events, source, now = request
            return ("ok", service.ingest(events, source=source, now=now))
        except AttuneError as exc:
            return ("error", type(exc).__name__, exc.message, exc.errors)
        except Exception:
            log.exception("an ingest worker failed on a batch")
            return ("error", "AttuneError", "the batch could not be ingested", [])

    # Coalesced requests are handled in threads, so their appends meet in one group commit.
    threads = ThreadPoolExecutor(MAX_COALESCED, thread_name_prefix="ingest")
    # As in `attune serve`: what lives as long as the process is frozen out of the cyclic
    # collector, and young collections run rarely (a batch allocates tens of thousands).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        conn.send(("ready", os.getpid()))
        while True:
            message = conn.recv()
            if message[0] != "batch":
                break
            if changes.erasures.value != erasures_seen:
                erasures_seen = changes.erasures.value
                privacy.registry.forget_all()
                privacy.person_keys.forget_all()
            calls.clear()
            requests = message[1]
            outcomes = [handle(requests[0])] if len(requests) == 1 else list(threads.map(handle, requests))
            conn.send(("done", outcomes, list(calls)))
    except (EOFError, BrokenPipeError):
        pass  # the serving process is gone (or stopped before we started): nothing to answer
    finally:
        threads.shutdown(wait=False)
        dispose(engine)
