"""Error logs carry the traceback, never the local variables of its frames."""

from __future__ import annotations

import io
import logging

from attune.observability.logging import configure_logging


def _fail_holding(value: str) -> None:
    held = value.upper()  # noqa: F841 - a local a traceback must not print
    raise ValueError("boom")


def test_console_tracebacks_leave_out_local_variables() -> None:
    configure_logging("info", "console")
    buffer = io.StringIO()
    root = logging.getLogger()
    root.handlers[0].stream = buffer  # type: ignore[attr-defined]
    secret = "-".join(["zelda", "mail", str(6 * 7)])
    try:
        _fail_holding(secret)
    except ValueError:
        logging.getLogger("attune.test").exception("request failed")
    out = buffer.getvalue()
    assert "ValueError" in out and "boom" in out and "_fail_holding" in out
    assert secret not in out and secret.upper() not in out
