"""Engines chosen by URL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from attune.errors import ConfigError
from attune.storage.engine import is_sqlite, make_engine, normalize_url, sqlite_file


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_sqlite_engine_uses_wal_and_the_chosen_sync_mode(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", sqlite_synchronous="normal")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert is_sqlite(engine)
    finally:
        engine.dispose()


def test_the_wal_file_is_cut_back_to_its_limit_when_it_restarts(tmp_path) -> None:
    path = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{path}", wal_size_limit=64 * 1024)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x BLOB)"))
            conn.execute(text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) "
                              "INSERT INTO t SELECT randomblob(4000) FROM n"))
        wal = path.with_name("w.db-wal")
        assert wal.stat().st_size > 1_000_000
        with engine.begin() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))
        with engine.begin() as conn:  # the next write restarts the WAL and truncates the file
            conn.execute(text("INSERT INTO t VALUES (x'00')"))
        assert wal.stat().st_size <= 64 * 1024
    finally:
        engine.dispose()


def test_unknown_sync_mode_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="sqlite_synchronous must be FULL, NORMAL or EXTRA, not 'OFF'"):
        make_engine(f"sqlite:///{tmp_path / 'a.db'}", sqlite_synchronous="OFF")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "redis://localhost", "nonsense"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="unsupported database URL"):
        make_engine(url)


def test_sqlite_file_names_the_database_on_disk_and_nothing_else(tmp_path) -> None:
    assert sqlite_file(make_engine(f"sqlite:///{tmp_path / 'a.db'}")) == tmp_path / "a.db"
    assert sqlite_file(create_engine("sqlite:///:memory:")) is None
    assert sqlite_file(make_engine("memory://")) is None
    assert sqlite_file(make_engine("postgresql://postgres@127.0.0.1:5432/test")) is None
