"""The event log in its own SQLite file: where its tables live, and appends that never wait
for a transaction on the derived state."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from attune.events.model import Event
from attune.log.gate import write_gate
from attune.log.sql import SqlEventLog
from attune.profiles.identity import SubjectKeys
from attune.storage.engine import dispose, events_file, log_engine, log_file, make_engine
from attune.storage.migrate import alembic_config, upgrade

LOG_TABLES = {"events", "subjects", "person_keys"}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'attune.db'}")
    upgrade(engine)
    yield engine
    dispose(engine)


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _event(event_id: str) -> Event:
    return Event(event_id=event_id, type="view", user_id="u1", item_id="i1", timestamp=1.7e9, received_at=1.7e9)


def test_the_log_tables_live_in_their_own_file(engine: Engine, tmp_path: Path) -> None:
    assert log_file(engine) == events_file(tmp_path / "attune.db") == tmp_path / "attune-events.db"
    assert _tables(tmp_path / "attune-events.db") == LOG_TABLES
    main = _tables(tmp_path / "attune.db")
    assert not main & LOG_TABLES
    assert {"profiles", "consumer_offsets", "alembic_version"} <= main
    # Unqualified SQL on the main engine finds them in the attached file.
    SqlEventLog(engine, SubjectKeys()).append([_event("e1")])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT event_id FROM events")).scalars().all() == ["e1"]


def test_the_log_engine_is_made_once_and_only_for_a_sqlite_file(engine: Engine) -> None:
    own = log_engine(engine)
    assert own is not engine and own is log_engine(engine)
    assert log_file(own) is None  # nothing attached to the log's own engine
    memory = make_engine("memory")
    assert log_engine(memory) is memory and log_file(memory) is None
    assert log_engine(make_engine("postgresql://postgres@127.0.0.1:5432/test")).dialect.name == "postgresql"


def test_an_append_commits_while_a_derived_state_transaction_holds_its_write_lock(engine: Engine) -> None:
    log = SqlEventLog(engine, SubjectKeys())
    appended = threading.Event()

    def append() -> None:
        log.append([_event("during")])
        appended.set()

    with write_gate(engine, "main").hold(urgent=False), engine.begin() as conn:
        # A consumer-like transaction that has written: SQLite's lock on the main file is held.
        conn.execute(text("INSERT INTO consumer_offsets VALUES ('test', 1, 0)"))
        worker = threading.Thread(target=append)
        worker.start()
        assert appended.wait(10), "the append waited for the derived state's transaction"
    worker.join(10)
    assert log.head() == 1


def test_gates_by_scope(engine: Engine) -> None:
    main, log, both = write_gate(engine, "main"), write_gate(engine, "log"), write_gate(engine)
    assert main is not log
    assert write_gate(log_engine(engine)) is log  # the log's own engine queues with its file's writers
    holding = threading.Event()
    release = threading.Event()

    def hold_log() -> None:
        with log.hold(urgent=True):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_log)
    holder.start()
    assert holding.wait(10)
    with main.hold(urgent=False):  # the main file's gate is free meanwhile
        pass
    got_both = threading.Event()

    def take_both() -> None:
        with both.hold(urgent=False):
            got_both.set()

    taker = threading.Thread(target=take_both)
    taker.start()
    time.sleep(0.05)
    assert not got_both.is_set()  # "all" waits for the log's holder too
    release.set()
    assert got_both.wait(10)
    holder.join(10)
    taker.join(10)


def test_upgrading_a_store_of_one_file_moves_the_log_with_its_rows(tmp_path: Path, caplog) -> None:
    path = tmp_path / "old.db"
    single = make_engine(f"sqlite:///{path}", attach_log=False)  # as installations before 0009
    upgrade(single, "0008")
    SqlEventLog(single, SubjectKeys()).append([_event("gone"), _event("kept"), _event("also")])
    with single.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE event_id = 'gone'"))
        conn.execute(text("INSERT INTO subjects VALUES ('u:1', 'k', x'00', 1)"))
    dispose(single)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with caplog.at_level("WARNING"):
            upgrade(engine)
        assert "moving 2 rows of events to the eventlog database file" in caplog.text  # said, as it takes a while
        assert _tables(tmp_path / "old-events.db") == LOG_TABLES
        assert not _tables(path) & LOG_TABLES
        log = SqlEventLog(engine, SubjectKeys())
        assert [(e.offset, e.event.event_id) for e in log.read(0, 10)] == [(2, "kept"), (3, "also")]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT subject_key FROM subjects")).scalars().all() == ["u:1"]
        log.append([_event("next")])
        assert log.head() == 4  # offsets go on after the moved rows
        command.downgrade(alembic_config(engine), "0008")  # and back
        assert LOG_TABLES <= _tables(path)
        assert not _tables(tmp_path / "old-events.db")
    finally:
        dispose(engine)
