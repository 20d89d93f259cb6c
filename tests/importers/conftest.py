"""Fixtures for the importer tests: a fresh embedded installation per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from attune.runtime import Runtime
from attune.settings import load_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """An installation on SQLite in a temporary data directory, closed afterwards."""
    rt = Runtime.open(load_settings(data_dir=tmp_path / "data"))
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def write(tmp_path: Path):
    """Write a text file (UTF-8) into the test's directory and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
