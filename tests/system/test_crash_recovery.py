"""Crash recovery of ``attune serve`` on the embedded store.

The server runs as a real subprocess and is killed with SIGKILL while two clients stream
batches at it. What a client saw acknowledged (a 200 answer) must be in the log exactly once;
a batch whose answer never came is in the log whole or not at all; re-sending it after a
restart completes it without doubling anything; and the consumers resume from their
committed positions, so every profile counts each event exactly once.
"""

from __future__ import annotations

import itertools
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals"),
]

ATTUNE = [sys.executable, "-m", "attune.cli.main"]
USERS = [f"crash-user-{k:02d}" for k in range(12)]
BATCH = 100
SENDERS = 2
#: Acknowledged batches to wait for in each round before the kill.
ACKS_BEFORE_KILL = 15
ROUNDS = 2


@dataclass
class Sent:
    """One batch as the clients saw it."""

    number: int
    events: list[dict]
    acknowledged: bool = False


@dataclass
class Ledger:
    """Every batch sent in the test and what its answer was."""

    batches: dict[int, Sent] = field(default_factory=dict)
    numbers: itertools.count = field(default_factory=itertools.count)
    surprises: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> list[Sent]:
        with self.lock:
            return [b for b in self.batches.values() if b.acknowledged]

    def unacknowledged(self) -> list[Sent]:
        with self.lock:
            return [b for b in self.batches.values() if not b.acknowledged]


def make_batch(number: int, t0: float) -> list[dict]:
    """Batch ``number``: unique event ids, users in rotation, so every count is known."""
    return [
        {
            "event_id": f"crash-{number:05d}-{i:03d}",
            "type": "view",
            "user_id": USERS[(number * BATCH + i) % len(USERS)],
            "item_id": f"item-{i % 17}",
            "timestamp": t0 + number + i / 1000,
        }
        for i in range(BATCH)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``attune serve`` on a data directory, as a child process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"serve-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*ATTUNE, "serve", "--data-dir", str(data_dir), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"attune serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"attune serve did not answer /healthz within {timeout:.0f}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def send_until_refused(url: str, key: str, ledger: Ledger, stop: threading.Event, t0: float) -> None:
    """Stream batches back to back until the server stops answering (or ``stop`` is set)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        while not stop.is_set():
            with ledger.lock:
                number = next(ledger.numbers)
                sent = ledger.batches[number] = Sent(number, make_batch(number, t0))
            try:
                response = client.post("/v1/events", json={"events": sent.events})
            except httpx.HTTPError:
                return  # the server is gone; this batch stays unacknowledged
            answer = response.json() if response.status_code == 200 else None
            if answer != {"accepted": BATCH, "duplicates": 0, "rejected": []}:
                with ledger.lock:
                    ledger.surprises.append(f"batch {number}: {response.status_code} {response.text[:200]}")
                return
            with ledger.lock:
                sent.acknowledged = True


def stored_ids(data_dir: Path) -> Counter:
    """How often each event id is in the log, read from the SQLite file itself."""
    conn = sqlite3.connect(data_dir / "attune-events.db")
    try:
        return Counter(
            dict(conn.execute("SELECT event_id, count(*) FROM events GROUP BY event_id").fetchall())
        )
    finally:
        conn.close()


def ids_of(batch: Sent) -> set[str]:
    return {event["event_id"] for event in batch.events}


def check_log_after_kill(data_dir: Path, ledger: Ledger) -> Counter:
    """Acknowledged: present once. In flight: all or nothing. Nothing we did not send."""
    stored = stored_ids(data_dir)
    assert all(count == 1 for count in stored.values()), [i for i, c in stored.items() if c > 1][:5]
    for batch in ledger.acknowledged():
        missing = ids_of(batch) - stored.keys()
        assert not missing, f"acknowledged batch {batch.number} lost {len(missing)} events"
    for batch in ledger.unacknowledged():
        present = len(ids_of(batch) & stored.keys())
        assert present in (0, BATCH), f"in-flight batch {batch.number} half-written: {present}/{BATCH}"
    sent = set().union(*(ids_of(b) for b in ledger.batches.values()))
    assert stored.keys() <= sent
    return stored


def wait_caught_up(url: str, timeout: float = 60.0) -> dict:
    """Poll /readyz until every consumer's lag is 0."""
    deadline = time.monotonic() + timeout
    ready: dict = {}
    while time.monotonic() < deadline:
        ready = httpx.get(f"{url}/readyz", timeout=15).json()
        if ready.get("consumers") and all(c["lag"] == 0 for c in ready["consumers"].values()):
            return ready
        time.sleep(0.1)
    pytest.fail(f"consumers did not catch up within {timeout:.0f}s: {ready}")


@pytest.fixture
def installation(tmp_path: Path) -> tuple[Path, str]:
    """A fresh data directory and its admin key (``attune init`` prints it last)."""
    path = tmp_path / "data"
    init = subprocess.run(
        [*ATTUNE, "init", "--data-dir", str(path)], capture_output=True, text=True, check=False
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return path, init.stdout.strip().splitlines()[-1]


def test_sigkill_loses_no_acknowledged_event_and_doubles_none(installation: tuple[Path, str]) -> None:
    data_dir, key = installation
    ledger = Ledger()
    t0 = time.time() - 3600

    for _round in range(ROUNDS):
        server = Server(data_dir)
        stop = threading.Event()
        target = len(ledger.acknowledged()) + ACKS_BEFORE_KILL
        senders = [
            threading.Thread(target=send_until_refused, args=(server.url, key, ledger, stop, t0))
            for _ in range(SENDERS)
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 40
        while (
            len(ledger.acknowledged()) < target
            and time.monotonic() < deadline
            and any(sender.is_alive() for sender in senders)
        ):
            time.sleep(0.01)
        server.kill()  # SIGKILL in the middle of the stream: no shutdown hooks run
        stop.set()
        for sender in senders:
            sender.join(timeout=15)
        assert not ledger.surprises, ledger.surprises
        assert len(ledger.acknowledged()) >= target, f"too few batches acknowledged:\n{server.log()}"
        check_log_after_kill(data_dir, ledger)

    in_flight = ledger.unacknowledged()
    assert in_flight, "the kill should have cut at least one request short"
    already_stored = check_log_after_kill(data_dir, ledger).keys()

    server = Server(data_dir)
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as client:
            # Re-sending what was in flight completes it; what had been committed is a duplicate.
            for batch in in_flight:
                answer = client.post("/v1/events", json={"events": batch.events}).json()
                committed = ids_of(batch) <= already_stored
                expected = {"accepted": 0 if committed else BATCH, "duplicates": BATCH if committed else 0}
                assert answer == {**expected, "rejected": []}, (batch.number, answer)
            # An acknowledged batch sent again changes nothing.
            again = client.post("/v1/events", json={"events": ledger.acknowledged()[0].events}).json()
            assert again == {"accepted": 0, "duplicates": BATCH, "rejected": []}

            ready = wait_caught_up(server.url)
            total = len(ledger.batches) * BATCH
            stored = stored_ids(data_dir)
            assert sum(stored.values()) == len(stored) == total
            assert ready["log_head"] >= total

            # The consumers resumed from their committed positions: each event counted once.
            expected_per_user = Counter(e["user_id"] for b in ledger.batches.values() for e in b.events)
            for user_id, expected in expected_per_user.items():
                profile = client.get(f"/v1/users/{user_id}/profile")
                assert profile.status_code == 200, profile.text
                assert profile.json()["event_counts"] == {"view": expected}, user_id
    finally:
        server.stop()
