"""``attune serve``: uvicorn over the app, consumers in the same process."""

from __future__ import annotations

import uvicorn

from attune.api.app import create_app
from attune.observability.logging import configure_logging
from attune.runtime import Runtime
from attune.settings import Settings


def serve(settings: Settings, *, host: str | None, port: int | None, access_log: bool = False) -> None:
    """Run the server until interrupted."""
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime.open(settings)
    app = create_app(runtime)
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
        runtime.engine.dispose()
