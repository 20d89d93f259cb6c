"""Health, readiness (with consumer lag) and Prometheus metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attune.runtime import Runtime


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_head_and_lag(client: TestClient, runtime: Runtime) -> None:
    empty = client.get("/readyz").json()
    assert empty["status"] == "ready" and empty["log_head"] == 0
    events = [{"type": "view", "anonymous_id": "d", "item_id": f"i{n}"} for n in range(3)]
    client.post("/v1/events?wait=true", json={"events": events})
    body = client.get("/readyz").json()
    assert body["log_head"] == 3
    consumers = body["consumers"]
    assert {"profiles", "popularity"} <= set(consumers)
    for name, state in consumers.items():
        assert state["lag"] == body["log_head"] - state["position"], name
        assert isinstance(state["lag"], int) and state["lag"] >= 0
    # wait=true means the realtime consumers have caught up.
    assert consumers["profiles"]["lag"] == 0 and consumers["popularity"]["lag"] == 0


def test_readyz_is_503_when_the_store_fails(client: TestClient, runtime: Runtime, monkeypatch) -> None:
    def broken() -> int:
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(runtime.log, "head", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "detail": "store unreachable"}


def test_metrics_exposes_counters(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [{"type": "view", "anonymous_id": "d"}]})
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'attune_events_accepted_total{source="api"}' in text
    assert "attune_http_request_seconds_bucket" in text and 'route="/v1/events"' in text
    assert "attune_consumer_position" in text


def test_unknown_routes_are_problem_404(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.delete("/healthz").status_code == 405
