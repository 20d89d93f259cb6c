"""``attune serve``: uvicorn over the app, consumers in the same process."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

import uvicorn
from threadpoolctl import threadpool_limits

from attune.api.app import create_app
from attune.consumers.pipeline import Pipeline
from attune.events.enrich import device_from_user_agent
from attune.observability.logging import configure_logging
from attune.runtime import Runtime
from attune.settings import Settings
from attune.training.schedule import retraining_for

# Events per consumer transaction while serving. SQLite has one writer: a consumer holds the
# write lock from its first write to its commit, and appends wait behind it meanwhile.
_SERVE_CONSUMER_BATCH = 1000


class ConsumerPacer:
    """Gives ingest priority over the consumers that share its process (and its GIL).

    Ingest only appends; the consumers derive state and may lag and catch up (``/readyz``
    shows by how much). Left alone, consumer threads take the GIL and SQLite's single write
    lock as often as ingest does, so a burst of appends ran at a fraction of its speed and
    single-event requests queued behind one consumer transaction per event. The pacer:

    * starts a consumer's steps at most every ``min_interval`` seconds, so a stream of small
      requests is handled in batches (an idle consumer still starts at once when woken);
    * while appends are arriving (within ``busy_window`` seconds), rests a consumer
      ``busy_ratio`` times as long as its last step took, capped at ``max_rest``.
    """

    def __init__(
        self,
        min_interval: float = 0.1,
        busy_ratio: float = 4.0,
        busy_window: float = 1.0,
        max_rest: float = 1.0,
    ) -> None:
        self.min_interval = min_interval
        self.busy_ratio = busy_ratio
        self.busy_window = busy_window
        self.max_rest = max_rest
        self.last_append = float("-inf")

    def appended(self) -> None:
        """Record ingest activity (called after every append)."""
        self.last_append = time.monotonic()

    def pace(self, work: Callable[[list], int], stop: threading.Event) -> Callable[[list], int]:
        """``work`` with the rests described above; a rest ends early when ``stop`` is set."""
        last_start = float("-inf")
        last_took = 0.0

        def paced(batch: list) -> int:
            nonlocal last_start, last_took
            if not batch:
                return work(batch)  # an empty batch costs nothing: no rest
            now = time.monotonic()
            rest = last_start + self.min_interval - now
            if now - self.last_append < self.busy_window:
                rest = max(rest, min(self.busy_ratio * last_took, self.max_rest))
            if rest > 0:
                stop.wait(rest)
            last_start = time.monotonic()
            try:
                return work(batch)
            finally:
                last_took = time.monotonic() - last_start

        return paced

    def install(self, pipeline: Pipeline) -> None:
        """Pace every consumer of ``pipeline``: each runner's ``apply`` is wrapped in place."""
        pipeline.batch_size = _SERVE_CONSUMER_BATCH
        for runner in pipeline.runners:
            runner.batch_size = _SERVE_CONSUMER_BATCH
            runner.apply = self.pace(runner.apply, pipeline._stop)  # type: ignore[method-assign]


def serve(settings: Settings, *, host: str | None, port: int | None, access_log: bool = False) -> None:
    """Run the server until interrupted."""
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime.open(settings)
    pacer = ConsumerPacer()
    pacer.install(runtime.pipeline)
    notify = runtime.pipeline.notify

    def appended() -> None:
        pacer.appended()
        notify()

    runtime.ingest.on_append = appended
    # The user-agent parser compiles its rules on first use (a few hundred ms): do it now,
    # not inside the first request.
    device_from_user_agent("Mozilla/5.0 (X11; Linux x86_64) attune-warm-up")
    device_from_user_agent.cache_clear()
    app = create_app(runtime)
    # Everything built so far lives as long as the process. Freezing it keeps the cyclic
    # garbage collector from walking those objects again in every full collection: with the
    # tens of thousands of containers each parsed batch allocates, full collections were
    # about a sixth of ingest time and the largest pauses single requests saw.
    gc.freeze()
    # Requests already run in parallel threads; BLAS threads inside each model call on top of
    # them oversubscribed the 2 cores (load 7.8, p99 4.3 s at concurrency 32 in
    # benchmarks/recommend_serving.py; 174 req/s instead of 53 with one BLAS thread).
    blas_limits = threadpool_limits(limits=1)  # noqa: F841 - the limit holds while it lives
    retraining = retraining_for(runtime)  # None unless [training] retrain_every_hours is set
    if retraining is not None:
        retraining.start()
    try:
        uvicorn.run(
            app,
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            access_log=access_log,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )
    finally:
        if retraining is not None:
            retraining.stop(timeout=1.0)
        runtime.engine.dispose()
