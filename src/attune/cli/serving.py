"""``attune serve``: uvicorn over the app, consumers in the same process."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from attune.api.app import create_app
from attune.auth.secure import check_listen, tls_options
from attune.consumers.pipeline import Pacing
from attune.events.enrich import device_from_user_agent
from attune.ingest.workers import default_worker_count
from attune.observability.logging import configure_logging
from attune.privacy.keyring import has_master_key
from attune.runtime import Runtime
from attune.settings import Settings
from attune.storage.engine import dispose
from attune.training.schedule import retraining_for


def serve(
    settings: Settings,
    *,
    host: str | None,
    port: int | None,
    access_log: bool = False,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    ingest_workers: int | None = None,
) -> None:
    """Run the server until interrupted (over TLS when given a certificate and its key).

    ``ingest_workers``: processes that ingest event batches beside this one (default: the
    ``ingest.workers`` setting, else one per core: see ``default_worker_count``).
    """
    configure_logging(settings.log_level, settings.log_format)
    # WAL checkpoints in the background: none runs inside a commit that appends wait behind.
    runtime = Runtime.open(settings, background_checkpoints=True)
    # Consumers share this process with ingest: they give way to appends (see Pacing).
    runtime.pipeline.pacing = Pacing()
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
    # A 1,000-event batch keeps ~15,000 containers alive while it is validated; with the
    # default threshold (700) every batch ran dozens of young collections and several
    # middle ones, each a pause for every thread (up to 40 ms under load). Collect the
    # young generation after 50,000 net allocations instead: requests free what they
    # parse, so that is rare, and each collection is still bounded.
    gc.set_threshold(50_000, 20, 100)
    # A thread that wants the GIL waits up to the switch interval for a busy one to let go.
    # Consumer threads compute for milliseconds at a time; at the default 5 ms, a request
    # crossing threads (event loop -> worker -> event loop) waits for it at every hand-over,
    # a dozen times per request. 0.25 ms keeps a request beside a busy consumer within a few
    # ms (1 ms still let a consumer's long step stretch single events to 40-70 ms).
    sys.setswitchinterval(0.00025)
    # Requests already run in parallel threads; BLAS threads inside each model call on top of
    # them oversubscribed the 2 cores (load 7.8, p99 4.3 s at concurrency 32 in
    # benchmarks/recommend_serving.py; 174 req/s instead of 53 with one BLAS thread).
    blas_limits = threadpool_limits(limits=1)  # noqa: F841 - the limit holds while it lives
    # Event batches are validated and appended in processes of their own: this process's
    # interpreter runs one thread at a time (see attune/ingest/workers.py).
    if ingest_workers is None:
        ingest_workers = settings.ingest.workers
    runtime.start_ingest_workers(default_worker_count() if ingest_workers is None else ingest_workers)
    retraining = retraining_for(runtime)  # None unless [training] retrain_every_hours is set
    if retraining is not None:
        retraining.start()
    try:
        # Secure defaults: no unsafe installation listens beyond loopback (see auth/secure.py).
        check_listen(host or settings.host, environment=settings.environment,
                     has_master_key=has_master_key(settings), keys=runtime.keys.list())
        uvicorn.run(
            app,
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            access_log=access_log,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
            **tls_options(ssl_certfile, ssl_keyfile),
        )
    finally:
        if retraining is not None:
            retraining.stop(timeout=1.0)
        runtime.stop_ingest_workers()
        runtime.stop_checkpointers()
        dispose(runtime.engine)
