"""Fixtures for the lake tests: a fresh installation in a temporary directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from attune.runtime import Runtime
from attune.settings import Settings, load_settings

Ingest = Callable[[list[dict[str, Any]]], None]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Settings of an installation in ``tmp_path``, untouched by the caller's ATTUNE_* variables."""
    for name in list(os.environ):
        if name.startswith("ATTUNE_"):
            monkeypatch.delenv(name)
    return load_settings(data_dir=tmp_path)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    """An open runtime (consumers not started: tests call ``catch_up``)."""
    rt = Runtime.open(settings)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def ingest(runtime) -> Ingest:
    """Ingest events (failing on any rejection) and bring every consumer to the head of the log."""

    def run(events: list[dict[str, Any]]) -> None:
        report = runtime.ingest.ingest(events)
        assert report.rejected == []
        assert report.accepted == len(events)
        runtime.catch_up()

    return run
