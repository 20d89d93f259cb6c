"""Fixtures of the segment tests: a migrated store, a fake clock, a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine

from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade


@pytest.fixture
def seg_engine(store_url: str) -> Iterator[Engine]:
    """A migrated, empty store (SQLite file or PostgreSQL)."""
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


class FakeClock:
    """A clock tests move by hand; ``listeners`` are told when it moves (to wake schedulers)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.listeners: list = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        for listener in self.listeners:
            listener()
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Receiver:
    """A real HTTP server on 127.0.0.1 that fails the first ``fail_first`` POSTs with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.received: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                    if not failing:
                        receiver.received.append(json.loads(body))
                        receiver.headers.append(dict(self.headers))
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
