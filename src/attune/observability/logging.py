"""Structured logging: console for people, JSON lines for log shippers."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Route stdlib and structlog records through one renderer."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Rich's default prints every frame's local variables: for a request holding a
            # 1,000-event batch that took seconds and stalled the event loop, and it would
            # copy personal data into logs. Plain tracebacks, a bounded number of frames.
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False, max_frames=20),
        )
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces its dialect at every start; only its warnings matter to operators.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _drop_color_message(_logger, _name, event_dict):  # noqa: ANN001 - structlog processor
    """uvicorn attaches an ANSI-coloured copy of each message; the plain one is enough."""
    event_dict.pop("color_message", None)
    return event_dict
