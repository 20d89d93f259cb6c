"""The write gate: one writer at a time per SQLite database in a process, appends first."""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine

from attune.log.gate import WriteGate, write_gate


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the waiting threads never queued"
        time.sleep(0.001)


def test_urgent_waiters_go_before_ordinary_ones() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with gate.hold(urgent=False):
            order.append("holder")
            release.wait()

    def waiter(name: str, urgent: bool) -> None:
        with gate.hold(urgent=urgent):
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    _wait_until(lambda: order == ["holder"])
    ordinary = threading.Thread(target=waiter, args=("consumer", False))
    ordinary.start()
    _wait_until(lambda: gate.waiting == 1)
    urgent = threading.Thread(target=waiter, args=("append", True))
    urgent.start()
    _wait_until(lambda: gate.waiting == 2)
    release.set()
    for thread in (first, ordinary, urgent):
        thread.join(timeout=10)
    assert order == ["holder", "append", "consumer"]


def test_one_holder_at_a_time() -> None:
    gate = WriteGate()
    inside = 0
    most = 0
    lock = threading.Lock()

    def work(urgent: bool) -> None:
        nonlocal inside, most
        for _ in range(200):
            with gate.hold(urgent=urgent):
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most == 1 and gate.waiting == 0


def test_a_failing_holder_releases_the_gate() -> None:
    gate = WriteGate()
    try:
        with gate.hold(urgent=True):
            raise ValueError("boom")
    except ValueError:
        pass
    acquired = threading.Event()

    def other() -> None:
        with gate.hold(urgent=False):
            acquired.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=10)
    assert acquired.is_set()


def test_engines_on_one_sqlite_file_share_a_gate_and_postgresql_is_open(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    one, two, other = create_engine(url), create_engine(url), create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    assert write_gate(one) is write_gate(two)
    assert write_gate(one) is not write_gate(other)
    pg = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    open_gate = write_gate(pg)
    # The open gate never blocks, even when "held" twice by one thread.
    with open_gate.hold(urgent=False), open_gate.hold(urgent=True):
        pass


def _hold_in_child(database: str, marker: str, release: str) -> None:
    """In another process: hold the gate of ``database`` until ``release`` exists."""
    import os
    from pathlib import Path

    gate = write_gate(create_engine(f"sqlite:///{database}"))
    with gate.hold(urgent=True):
        Path(marker).write_text("in")
        while not os.path.exists(release):
            time.sleep(0.01)
        Path(marker).write_text("out")


def test_writers_of_other_processes_wait_for_the_gate(tmp_path) -> None:
    import multiprocessing

    database, marker, release = tmp_path / "x.db", tmp_path / "marker", tmp_path / "release"
    child = multiprocessing.get_context("spawn").Process(
        target=_hold_in_child, args=(str(database), str(marker), str(release))
    )
    child.start()
    try:
        _wait_until(lambda: marker.exists(), timeout=60)
        gate = write_gate(create_engine(f"sqlite:///{database}"))
        threading.Timer(0.2, release.touch).start()
        with gate.hold(urgent=True):
            # Only once the other process has let go: it wrote "out" before releasing.
            assert marker.read_text() == "out"
    finally:
        child.join(timeout=30)
    assert child.exitcode == 0
