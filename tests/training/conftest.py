"""Fixtures of the training tests (data helpers live in ``planted.py``)."""

from __future__ import annotations

import pytest
from planted import planted_rows

from attune.runtime import Runtime


@pytest.fixture
def planted_runtime(runtime: Runtime) -> Runtime:
    """A runtime whose store holds the checkerboard as view events."""
    events = [{"type": "view", **row} for row in planted_rows()]
    report = runtime.ingest.ingest(events)
    assert report.accepted == len(events), report.rejected[:3]
    runtime.catch_up()
    return runtime
