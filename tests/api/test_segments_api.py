"""The segments API: definitions, members, memberships, conflicts, history and their scopes."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

NOW = time.time()


def post_views(client: TestClient, user: str, n: int, ago: float = 600) -> None:
    events = [
        {"type": "view", "user_id": user, "item_id": f"i{j}", "timestamp": NOW - ago - j} for j in range(n)
    ]
    # ?wait=true answers once every realtime consumer (the segments consumer included) has the events.
    response = client.post("/v1/events?wait=true", json={"events": events})
    assert response.status_code == 200 and response.json()["accepted"] == n


def wait_segments(client: TestClient, user: str, expected: set[str], timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/users/{user}/segments").json()
        if {s["name"] for s in body["segments"]} == expected or time.monotonic() > deadline:
            return body["segments"]
        time.sleep(0.02)


def test_put_then_events_then_memberships(client: TestClient) -> None:
    response = client.put(
        "/v1/segments/fans",
        json={"rule": "count(view, window=7d) >= 3", "priority": 10, "group": "tier", "description": "keen"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["version"], body["size"], body["group"], body["priority"]) == ("fans", 1, 0, "tier", 10)
    post_views(client, "u1", 3)
    post_views(client, "u2", 1)
    [membership] = wait_segments(client, "u1", {"fans"})
    assert membership["name"] == "fans" and membership["confidence"] == 1.0
    assert membership["since"].endswith("Z")
    assert client.get("/v1/users/u2/segments").json() == {"segments": []}
    assert client.get("/v1/users/nobody/segments").json() == {"segments": []}
    listed = client.get("/v1/segments").json()["segments"]
    assert [(s["name"], s["size"]) for s in listed] == [("fans", 1)]
    # A changed rule is a new version and re-evaluates everyone before answering.
    changed = client.put("/v1/segments/fans", json={"rule": "count(view, window=7d) >= 1"}).json()
    assert (changed["version"], changed["size"]) == (2, 2)


def test_bad_rule_is_422_with_the_position(client: TestClient) -> None:
    response = client.put("/v1/segments/bad", json={"rule": "count(view, window=7d) >= "})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["position"] == len("count(view, window=7d) >= ")
    assert (problem["line"], problem["column"]) == (1, problem["position"] + 1)
    assert "bad" in problem["detail"] and "column" in problem["detail"]
    unknown = client.put("/v1/segments/bad", json={"rule": "exists(view, window=1d) and engagment >= 1"}).json()
    assert unknown["position"] == len("exists(view, window=1d) and ")
    for body in ({"rule": 3}, {"rule": "exists(view, window=0d)"}, {"rule": "x", "priorty": 3}, [1]):
        assert client.put("/v1/segments/bad", json=body).status_code == 422, body
    assert client.put("/v1/segments/bad", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.get("/v1/segments").json() == {"segments": []}


def test_members_pages_and_delete(client: TestClient) -> None:
    client.put("/v1/segments/seen", json={"rule": "exists(view, window=7d)"})
    for i in range(5):
        post_views(client, f"u{i}", 1)
    wait_segments(client, "u4", {"seen"})
    first = client.get("/v1/segments/seen/members?limit=2").json()
    assert first["total"] == 5 and len(first["members"]) == 2 and first["next_offset"] == 2
    rest = client.get("/v1/segments/seen/members?offset=2&limit=10").json()
    assert rest["next_offset"] is None
    ids = [m["user_id"] for m in first["members"] + rest["members"]]
    assert sorted(ids) == [f"u{i}" for i in range(5)]
    assert client.get("/v1/segments/nope/members").status_code == 404
    assert client.get("/v1/segments/seen/members?limit=0").status_code == 422
    history = client.get("/v1/segments/seen/history").json()
    assert history["size"] == 5
    assert sum(b["entries"] for b in history["series"]) == 5 and history["series"][-1]["size"] == 5
    assert client.delete("/v1/segments/seen").json() == {"deleted": "seen"}
    assert client.get("/v1/users/u1/segments").json() == {"segments": []}
    assert client.delete("/v1/segments/seen").status_code == 404
    assert client.get("/v1/segments/seen/history").status_code == 404


def test_delete_refused_while_referenced(client: TestClient) -> None:
    client.put("/v1/segments/a", json={"rule": "exists(view, window=7d)"})
    client.put("/v1/segments/b", json={"rule": 'segment("a") and exists(click, window=1d)'})
    response = client.delete("/v1/segments/a")
    assert response.status_code == 422 and "used by b" in response.json()["detail"]
    cycle = client.put("/v1/segments/a", json={"rule": 'segment("b")'})
    assert cycle.status_code == 422 and "->" in cycle.json()["detail"]


def test_conflict_report(client: TestClient) -> None:
    client.put("/v1/segments/all", json={"rule": "count(view, window=7d) >= 0"})
    client.put("/v1/segments/x", json={"rule": "exists(view, window=7d)", "group": "g", "priority": 1})
    client.put("/v1/segments/y", json={"rule": "exists(click, window=7d)", "group": "g", "priority": 1})
    conflicts = client.get("/v1/segments/conflicts").json()["conflicts"]
    kinds = {(c["kind"], tuple(c["segments"])) for c in conflicts}
    assert ("always_matches", ("all",)) in kinds
    assert ("equal_priority", ("x", "y")) in kinds


def test_scopes(client: TestClient, auth) -> None:
    body = {"rule": "exists(view, window=7d)"}
    assert client.put("/v1/segments/s", json=body, headers=auth("read")).status_code == 403
    assert client.put("/v1/segments/s", json=body, headers=auth("ingest")).status_code == 403
    assert client.put("/v1/segments/s", json=body, headers=auth("admin")).status_code == 200
    for path in ("/v1/segments", "/v1/segments/s", "/v1/segments/s/members", "/v1/segments/conflicts",
                 "/v1/segments/s/history", "/v1/users/u1/segments"):
        assert client.get(path, headers=auth("read")).status_code == 200, path
        assert client.get(path, headers=auth("ingest")).status_code == 403, path
        assert client.get(path, headers={"Authorization": ""}).status_code == 401, path
    assert client.delete("/v1/segments/s", headers=auth("read")).status_code == 403
    assert client.delete("/v1/segments/s", headers=auth("admin")).status_code == 200


def test_features_of_a_person_through_the_api(client: TestClient) -> None:
    post_views(client, "feat", 4)  # four views of distinct items, ten minutes ago
    body = client.get("/v1/users/feat/features").json()
    assert body["windows"]["1h"]["events"]["view"] == {"count": 4, "distinct": 4, "value": 0}
    assert body["features"]["frequency"] >= 4 and 0.0 <= body["features"]["engagement_score"] <= 1.0
    empty = client.get("/v1/users/nobody/features").json()
    assert empty["windows"]["1h"] == {"events": {}, "categories": {}}
