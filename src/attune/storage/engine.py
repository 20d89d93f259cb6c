"""Engines chosen by URL: ``sqlite:///path`` (embedded default) or ``postgresql://…``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from attune.errors import ConfigError


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


#: Size the SQLite WAL file is cut back to whenever it restarts (it grows while readers and
#: writers never pause: 650 MB after a 500,000-event burst in ``benchmarks/ingest.py``).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    wal_autocheckpoint: int | None = None,
    wal_size_limit: int = WAL_SIZE_LIMIT,
) -> Engine:
    """Create an engine for ``url`` with the pragmas and pool each backend needs.

    ``wal_autocheckpoint=0`` stops SQLite commits from checkpointing the WAL themselves
    (run a :class:`attune.storage.checkpoint.WalCheckpointer` beside such an engine);
    ``wal_size_limit``: bytes the WAL file keeps once a checkpoint let it restart.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        sync = sqlite_synchronous.upper()
        if sync not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError(f"sqlite_synchronous must be FULL, NORMAL or EXTRA, not {sqlite_synchronous!r}")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI hook
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the single writer; synchronous decides durability.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute(f"PRAGMA journal_size_limit={int(wal_size_limit)}")
            if wal_autocheckpoint is not None:
                cur.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    if url.startswith("memory"):
        return create_engine("sqlite://", poolclass=NullPool)
    raise ConfigError(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or postgresql://…"
    )


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded SQLite store."""
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine on disk; None for other stores and in-memory ones."""
    database = engine.url.database if is_sqlite(engine) else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)
