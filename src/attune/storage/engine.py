"""Engines chosen by URL: ``sqlite:///path`` (embedded default) or ``postgresql://…``.

On SQLite the event log (the ``events`` table, with ``subjects`` and ``person_keys``, which
registering a new person writes) lives in a file of its own beside the main database
(``attune.db`` → ``attune-events.db``), attached to every connection of the main database
as ``eventlog``: SQL names the tables unqualified and SQLite finds them there. SQLite has one write lock per *file*, so appends (which take only
the log's lock, through :func:`log_engine`) never wait for a consumer's transaction on the
derived state, nor for a checkpoint of it: in one file, single events waited 4–16 ms at
the write lock behind consumer steps, and 170 ms behind a features flush.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
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


#: Schema name the event log's file is attached under on connections of the main database.
LOG_SCHEMA = "eventlog"


def events_file(database: Path) -> Path:
    """The SQLite file holding the event log beside the main database file ``database``."""
    return database.with_name(f"{database.stem}-events{database.suffix or '.db'}")


def wal_file(database: Path) -> Path:
    """The write-ahead log SQLite keeps beside the database file ``database``."""
    return database.with_name(f"{database.name}-wal")


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    wal_autocheckpoint: int | None = None,
    wal_size_limit: int = WAL_SIZE_LIMIT,
    attach_log: bool = True,
) -> Engine:
    """Create an engine for ``url`` with the pragmas and pool each backend needs.

    ``wal_autocheckpoint=0`` stops SQLite commits from checkpointing the WAL themselves
    (run a :class:`attune.storage.checkpoint.WalCheckpointer` beside such an engine);
    ``wal_size_limit``: bytes the WAL file keeps once a checkpoint let it restart.
    A SQLite database on disk gets its event log's file attached (see the module's
    docstring) unless ``attach_log`` is False (the log's own engine, :func:`log_engine`).
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

        database = sqlite_file(engine)
        log = events_file(database) if attach_log and database is not None else None

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI hook
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            schemas = ["main"]
            if log is not None:
                cur.execute(f"ATTACH DATABASE ? AS {LOG_SCHEMA}", (str(log),))
                schemas.append(LOG_SCHEMA)
            for schema in schemas:
                # WAL lets readers run beside the single writer; synchronous decides durability.
                cur.execute(f"PRAGMA {schema}.journal_mode=WAL")
                cur.execute(f"PRAGMA {schema}.synchronous={sync}")
                cur.execute(f"PRAGMA {schema}.cache_size=-65536")
                cur.execute(f"PRAGMA {schema}.journal_size_limit={int(wal_size_limit)}")
            if wal_autocheckpoint is not None:
                cur.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
            cur.close()

        engine.attune_log_file = log  # type: ignore[attr-defined]
        engine.attune_options = {  # type: ignore[attr-defined]
            "sqlite_synchronous": sync,
            "wal_autocheckpoint": wal_autocheckpoint,
            "wal_size_limit": wal_size_limit,
        }
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    if url.startswith("memory"):
        return create_engine("sqlite://", poolclass=NullPool)
    raise ConfigError(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or postgresql://…"
    )


_log_engines_lock = threading.Lock()


def log_file(engine: Engine) -> Path | None:
    """The event log's own SQLite file attached to ``engine``'s connections (None: the log is
    in the engine's own database, as on PostgreSQL, in memory and on the log's engine)."""
    return getattr(engine, "attune_log_file", None)


def log_engine(engine: Engine) -> Engine:
    """The engine the event log is appended and read through: for a SQLite database on disk
    one on the log's own file (made once, with the same pragmas), else ``engine`` itself."""
    log = log_file(engine)
    if log is None:
        return engine
    with _log_engines_lock:
        own = getattr(engine, "attune_log_engine", None)
        if own is None:
            own = make_engine(f"sqlite:///{log}", attach_log=False, **engine.attune_options)  # type: ignore[attr-defined]
            engine.attune_log_engine = own  # type: ignore[attr-defined]
        return own


def table_names(engine: Engine) -> set[str]:
    """The tables of ``engine``'s store, those in the event log's own file included."""
    names = set(inspect(engine).get_table_names())
    if log_file(engine) is not None:
        names |= set(inspect(log_engine(engine)).get_table_names())
    return names


def dispose(engine: Engine) -> None:
    """Close ``engine``'s pooled connections and those of its log's engine, if any."""
    own = getattr(engine, "attune_log_engine", None)
    if own is not None:
        own.dispose()
    engine.dispose()


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded SQLite store."""
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine on disk; None for other stores and in-memory ones."""
    database = engine.url.database if is_sqlite(engine) else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)
