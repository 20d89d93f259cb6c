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
    """All consumers of one installation.

    In the embedded mode ingest calls :meth:`notify` after each append, so consumers start
    at once; they also poll, so events appended by another process are picked up too.
    """

    def __init__(
        self,
        consumers: Iterable[Consumer],
        log_: EventLog,
        engine: Engine,
        *,
        poll_seconds: float = 0.5,
        flush_seconds: float = 5.0,
    ) -> None:
        self.log = log_
        self.runners = [ConsumerRunner(c, log_, engine) for c in consumers]
        self.poll_seconds = poll_seconds
        self.flush_seconds = flush_seconds
        self._changed = threading.Condition()
        self._wakeups = {runner.consumer.name: threading.Event() for runner in self.runners}
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
        """Start one thread per consumer."""
        self._stop.clear()
        for runner in self.runners:
            thread = threading.Thread(
                target=self._run, args=(runner,), name=f"consumer-{runner.consumer.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads after their current batch and flush buffered work."""
        self._stop.set()
        for wake in self._wakeups.values():
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
        """Wake every consumer: new events are in the log."""
        for wake in self._wakeups.values():
            wake.set()

    def _run(self, runner: ConsumerRunner) -> None:
        wake = self._wakeups[runner.consumer.name]
        last_flush = time.monotonic()
        backoff = 0.1
        while not self._stop.is_set():
            try:
                handled = runner.step()
                backoff = 0.1
            except Exception:  # noqa: BLE001 - a failing consumer retries; the others go on
                log.exception("consumer %s failed; retrying in %.1fs", runner.consumer.name, backoff)
                metrics.CONSUMER_ERRORS.labels(runner.consumer.name).inc()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if handled:
                with self._changed:
                    self._changed.notify_all()
            if time.monotonic() - last_flush >= self.flush_seconds:
                try:
                    runner.flush()
                except Exception:  # noqa: BLE001
                    log.exception("flush of consumer %s failed", runner.consumer.name)
                last_flush = time.monotonic()
            if not handled:
                wake.wait(self.poll_seconds)
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
        """Bring every consumer to the head of the log, in this thread."""
        return sum(runner.drain() for runner in self.runners)

    def replay(self) -> int:
        """Delete all derived state and rebuild it from the whole log."""
        for runner in self.runners:
            runner.reset()
        return self.drain()
