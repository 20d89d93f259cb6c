"""The registry API: list, promote and roll back, admin scope only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attune.runtime import Runtime
from attune.training.trainer import train


@pytest.fixture
def trained(client: TestClient, runtime: Runtime) -> TestClient:
    """Two versions: v1 (ease, promoted first) and v2 (popular, promoted after it)."""
    events = [
        {"type": "view", "user_id": f"u{u}", "item_id": f"i{i}", "timestamp": 1_700_000_000 + 10 * u + i}
        for u in range(6)
        for i in range(5)
        if (i + u) % 3
    ]
    assert client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == len(events)
    train(runtime.engine, runtime.settings, "ease")
    train(runtime.engine, runtime.settings, "popular")
    return client


def test_list_shows_versions_the_promoted_one_and_history(trained: TestClient) -> None:
    body = trained.get("/v1/models").json()
    assert body["promoted"] == "v2"
    assert [(v["version"], v["name"], v["status"]) for v in body["versions"]] == [
        ("v2", "popular", "promoted"),
        ("v1", "ease", "retired"),
    ]
    v1 = body["versions"][1]
    assert v1["params"] == {"l2": 250.0, "recency_tau": None} and "ndcg@10" in v1["metrics"] and v1["n_interactions"] == 20
    assert v1["data_from"].endswith("Z") and "artifact_path" not in v1
    assert [(h["action"], h["version"]) for h in body["history"]] == [("promote", "v1"), ("promote", "v2")]


def test_promote_and_rollback(trained: TestClient, runtime: Runtime) -> None:
    rolled = trained.post("/v1/models/rollback")
    assert (
        rolled.status_code == 200
        and rolled.json()["version"] == "v1"
        and rolled.json()["status"] == "promoted"
    )
    again = trained.post("/v1/models/rollback")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "no earlier promoted version" in again.json()["detail"]
    promoted = trained.post("/v1/models/v2/promote")
    assert promoted.status_code == 200 and promoted.json()["status"] == "promoted"
    history = trained.get("/v1/models").json()["history"]
    assert history[-1]["actor"].startswith("api:") and history[-1]["previous_version"] == "v1"


def test_unknown_version_is_404(trained: TestClient) -> None:
    response = trained.post("/v1/models/v99/promote")
    assert response.status_code == 404 and "no model version 'v99'" in response.json()["detail"]


def test_an_empty_registry_lists_nothing(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"promoted": None, "versions": [], "history": []}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/models/v1/promote"), ("POST", "/v1/models/rollback")],
)
def test_every_route_needs_the_admin_scope(trained: TestClient, auth, method: str, path: str) -> None:
    for scope in ("ingest", "read"):
        response = trained.request(method, path, headers=auth(scope))
        assert response.status_code == 403 and "lacks the 'admin' scope" in response.json()["detail"]
    assert trained.request(method, path, headers={"Authorization": ""}).status_code == 401
    assert trained.request(method, path, headers=auth("admin")).status_code in (200, 409)
