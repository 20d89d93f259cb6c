"""Requests in flight: counted by the middleware, waited for by consumer lanes."""

from __future__ import annotations

import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient

from attune.api.middleware import MetricsMiddleware
from attune.observability.inflight import RequestsInFlight


def test_quiet_only_when_every_request_has_left() -> None:
    tracker = RequestsInFlight()
    assert tracker.wait_quiet(0) and tracker.count == 0
    tracker.enter()
    tracker.enter()
    assert not tracker.wait_quiet(0.01)
    tracker.leave()
    assert not tracker.wait_quiet(0.01) and tracker.count == 1
    tracker.leave()
    assert tracker.wait_quiet(0) and tracker.count == 0


def test_a_waiter_wakes_when_the_last_request_leaves() -> None:
    tracker = RequestsInFlight()
    tracker.enter()
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: tracker.wait_quiet(10) and woke.set())
    waiter.start()
    assert not woke.wait(0.05)
    tracker.leave()
    waiter.join(5)
    assert woke.is_set()


def test_the_middleware_counts_a_request_while_it_is_answered_and_after_errors() -> None:
    tracker = RequestsInFlight()
    seen: list[int] = []
    app = FastAPI()

    @app.get("/probe")
    def probe() -> dict:
        seen.append(tracker.count)
        return {}

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("planned")

    app.add_middleware(MetricsMiddleware, in_flight=tracker)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/probe").status_code == 200
        assert client.get("/boom").status_code == 500
    assert seen == [1] and tracker.count == 0
