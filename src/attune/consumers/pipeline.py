"""Runs every consumer in background threads, woken when events are appended."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from sqlalchemy import Engine

from attune.consumers.base import Consumer, ConsumerRunner
from attune.log.protocol import EventLog
from attune.observability import metrics

log = logging.getLogger(__name__)


class Pipeline:
    """All consumers of one installation, run in lanes.

    A lane is one thread that reads each batch from the log once and hands it to every
    consumer in the lane. The realtime consumers (profiles, popularity, …) share one lane so
    a batch is decoded once for all of them; every other consumer (the lake, with its slow
    Parquet writes) gets a lane of its own so it never delays realtime state.

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
    ) -> None:
        self.log = log_
        self.runners = [ConsumerRunner(c, log_, engine, batch_size) for c in consumers]
        self.poll_seconds = poll_seconds
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        realtime = [r for r in self.runners if r.consumer.realtime]
        self.lanes = ([realtime] if realtime else []) + [[r] for r in self.runners if not r.consumer.realtime]
        self._changed = threading.Condition()
        self._wakeups = [threading.Event() for _ in self.lanes]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def runner(self, name: str) -> ConsumerRunner:
        """The runner of the consumer called ``name``."""
        for runner in self.runners:
            if runner.consumer.name == name:
                return runner
        raise KeyError(name)

    # -- background mode -------------------------------------------------
    def start(self) -> None:
        """Start one thread per lane."""
        self._stop.clear()
        for lane, wake in zip(self.lanes, self._wakeups, strict=True):
            names = "+".join(r.consumer.name for r in lane)
            thread = threading.Thread(target=self._run, args=(lane, wake), name=f"consumers-{names}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads after their current batch and flush buffered work."""
        self._stop.set()
        for wake in self._wakeups:
            wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        for runner in self.runners:
            try:
                runner.flush()
            except Exception:  # noqa: BLE001 - shutdown must go on for the other consumers
                log.exception("flush of consumer %s failed on shutdown", runner.consumer.name)

    def notify(self) -> None:
        """Wake every lane: new events are in the log."""
        for wake in self._wakeups:
            wake.set()

    def _run(self, lane: list[ConsumerRunner], wake: threading.Event) -> None:
        retry_at = {id(r): 0.0 for r in lane}
        backoff = {id(r): 0.1 for r in lane}
        last_flush = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            active = [r for r in lane if retry_at[id(r)] <= now]
            handled = 0
            if active:
                try:
                    batch = self.log.read(min(r.cursor for r in active), self.batch_size)
                except Exception:  # noqa: BLE001 - the store may be briefly unavailable
                    log.exception("reading the event log failed; retrying")
                    batch = []
                    self._stop.wait(1.0)
                for runner in active:
                    try:
                        handled += runner.apply(batch)
                        backoff[id(runner)] = 0.1
                    except Exception:  # noqa: BLE001 - a failing consumer retries; the others go on
                        delay = backoff[id(runner)]
                        log.exception("consumer %s failed; retrying in %.1fs", runner.consumer.name, delay)
                        metrics.CONSUMER_ERRORS.labels(runner.consumer.name).inc()
                        retry_at[id(runner)] = time.monotonic() + delay
                        backoff[id(runner)] = min(delay * 2, 30.0)
            if handled:
                with self._changed:
                    self._changed.notify_all()
            if time.monotonic() - last_flush >= self.flush_seconds:
                for runner in lane:
                    try:
                        runner.flush()
                    except Exception:  # noqa: BLE001
                        log.exception("flush of consumer %s failed", runner.consumer.name)
                last_flush = time.monotonic()
            if not handled:
                next_retry = min(retry_at.values()) - time.monotonic()
                wake.wait(max(0.0, min(self.poll_seconds, next_retry)) if next_retry > 0 else self.poll_seconds)
                wake.clear()

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
                batch = self.log.read(min(r.cursor for r in lane), self.batch_size)
                if not batch:
                    break
                total += sum(runner.apply(batch) for runner in lane)
            for runner in lane:
                runner.flush()
        return total

    def replay(self) -> int:
        """Delete all derived state and rebuild it from the whole log."""
        for runner in self.runners:
            runner.reset()
        return self.drain()
