"""Background WAL checkpoints: commits stop checkpointing, the checkpointer does it instead."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import Engine, text

from attune.runtime import Runtime
from attune.settings import load_settings
from attune.storage.checkpoint import WalCheckpointer
from attune.storage.engine import make_engine


def _wal_frames_after_writes(engine, rows: int) -> int:  # noqa: ANN001 - Engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x BLOB)"))
    for _ in range(rows):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (randomblob(4000))"))
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def test_commits_do_not_checkpoint_when_switched_off(tmp_path: Path) -> None:
    # 1,500 pages: past the default threshold (1,000), so automatic checkpoints would have
    # reset the WAL on the way; switched off, every frame is still in it.
    auto = make_engine(f"sqlite:///{tmp_path / 'auto.db'}")
    manual = make_engine(f"sqlite:///{tmp_path / 'manual.db'}", wal_autocheckpoint=0)
    assert _wal_frames_after_writes(manual, 1500) > _wal_frames_after_writes(auto, 1500)


def _store_with_a_row(database: Path) -> Engine:
    """An engine over ``database`` (no automatic checkpoints) whose table ``t`` holds a 100 KB row."""
    engine = make_engine(f"sqlite:///{database}", wal_autocheckpoint=0)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
        conn.execute(text("INSERT INTO t VALUES (randomblob(100000))"))
    return engine


def test_the_checkpointer_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    _store_with_a_row(database)
    size_before = database.stat().st_size
    checkpointer = WalCheckpointer(database, interval=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while checkpointer.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        checkpointer.stop()
    assert checkpointer.runs >= 2
    assert database.stat().st_size > size_before + 90_000  # the row now lives in the file itself


def test_checkpoints_come_often_while_no_appends_arrive_and_at_the_interval_otherwise(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    _store_with_a_row(database)
    busy = threading.Event()
    checkpointer = WalCheckpointer(database, interval=30, quiet_interval=0.02)
    checkpointer.busy = busy.is_set
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while checkpointer.runs < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.runs >= 5  # quiet: every 20 ms
        busy.set()
        time.sleep(0.1)  # the wait under way when appends began ends
        runs = checkpointer.runs
        time.sleep(0.3)
        assert checkpointer.runs == runs  # busy: the next one 30 s away
    finally:
        busy.clear()
        checkpointer.stop()


def test_runtime_runs_the_checkpointer_only_when_asked(tmp_path: Path) -> None:
    plain = Runtime.open(load_settings(data_dir=tmp_path / "a"))
    served = Runtime.open(load_settings(data_dir=tmp_path / "b"), background_checkpoints=True)
    try:
        assert plain.checkpointers == []
        # One per file: the database's and the event log's.
        assert [c.database.name for c in served.checkpointers] == ["attune.db", "attune-events.db"]
        with served.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    finally:
        plain.close()
        served.close()


def test_a_large_wal_is_restarted_even_while_writes_never_pause(tmp_path: Path) -> None:
    database = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{database}", wal_autocheckpoint=0, wal_size_limit=256 * 1024)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
    held = []
    checkpointer = WalCheckpointer(
        database, restart_bytes=1024 * 1024, hold_writers=lambda: held.append(1) or nullcontext()
    )
    wal = database.with_name("busy.db-wal")
    checkpoints = sqlite3.connect(database, timeout=30)
    reader = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    sizes = []
    try:
        for _ in range(12):
            # As under load: a reader of an older snapshot is always there when a write starts
            # (it ends ~10 ms later, within the restart's wait), so SQLite never starts the WAL
            # over by itself.
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM t").fetchone()
            ends = threading.Timer(0.01, reader.execute, args=("COMMIT",))
            ends.start()
            checkpointer.checkpoint(checkpoints)  # a RESTART waits for that reader
            with engine.begin() as conn:  # ~800 KB
                conn.execute(text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
                                  "INSERT INTO t SELECT randomblob(4000) FROM n"))
            ends.join()
            sizes.append(wal.stat().st_size)
    finally:
        reader.close()
        checkpoints.close()
        engine.dispose()
    assert checkpointer.restarts >= 1 and len(held) == checkpointer.restarts  # under the writers' gate
    assert sizes[-1] < 3 * 1024 * 1024  # without restarts: ~800 KB more each round (~10 MB)


def test_a_restart_waits_only_briefly_for_a_long_reader(tmp_path: Path) -> None:
    database = tmp_path / "long.db"
    engine = _store_with_a_row(database)
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot throughout
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (randomblob(100000))"))
    checkpoints = sqlite3.connect(database, timeout=30)
    waits = []  # the busy timeout in effect while writers are held
    checkpointer = WalCheckpointer(
        database, restart_bytes=0, restart_wait_ms=50,
        hold_writers=lambda: waits.append(checkpoints.execute("PRAGMA busy_timeout").fetchone()[0]) or nullcontext(),
    )
    try:
        busy, _frames, _copied = checkpointer.checkpoint(checkpoints)
        assert busy == 1 and checkpointer.restarts == 1  # gave up on the reader...
        assert waits == [50]  # ...after 50 ms, not the connection's 30 s
        assert checkpoints.execute("PRAGMA busy_timeout").fetchone()[0] == 30000  # restored
    finally:
        reader.execute("COMMIT")
        reader.close()
        checkpoints.close()
        engine.dispose()


def test_every_checkpoint_run_flushes_the_database_file_itself(tmp_path: Path, monkeypatch) -> None:
    from attune.storage import checkpoint as checkpoint_module

    database = tmp_path / "synced.db"
    engine = make_engine(f"sqlite:///{database}", wal_autocheckpoint=0)
    _wal_frames_after_writes(engine, 50)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(checkpoint_module.os, "fsync", fsync)
    checkpointer = WalCheckpointer(database)
    conn = sqlite3.connect(database)
    try:
        # A PASSIVE run under writes copies pages without syncing the file: it is synced anyway.
        checkpointer.checkpoint(conn)
        checkpointer.checkpoint(conn)
    finally:
        conn.close()
        engine.dispose()
    assert synced == [str(database), str(database)]
