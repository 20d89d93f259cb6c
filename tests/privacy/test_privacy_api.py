"""Consent, export and erasure over HTTP, and what is left in the data directory afterwards."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from attune.runtime import Runtime

USER = "zelda-7781"
EMAIL = "zelda.k@example.org"
PHONE = "+49 170 5550123"
IP = "198.51.100.77"
OTHER = "bob-4242"


def wait_for_lake(runtime: Runtime) -> None:
    head = runtime.log.head()
    deadline = time.monotonic() + 10
    lake = runtime.pipeline.runner("lake")
    while lake.cursor < head and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lake.cursor >= head


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_consent_put_and_get(private_client: TestClient, private_runtime: Runtime) -> None:
    answer = private_client.put(f"/v1/users/{USER}/consent",
                                json={"purposes": {"personalization": "granted", "marketing": "denied"},
                                      "source": "cookie-banner"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["purposes"]["marketing"]["state"] == "denied"
    assert body["purposes"]["marketing"]["source"] == "cookie-banner"
    assert body["purposes"]["analytics"]["source"] == "default"
    private_client.put(f"/v1/users/{USER}/consent", json={"purposes": {"marketing": "granted"}, "source": "email"})
    got = private_client.get(f"/v1/users/{USER}/consent").json()
    assert got["user_id"] == USER and got["purposes"]["marketing"]["state"] == "granted"
    assert [(h["purpose"], h["state"]) for h in got["history"]] == [
        ("personalization", "granted"), ("marketing", "denied"), ("marketing", "granted")]
    assert all(h["subject"] == USER for h in got["history"])  # the pseudonym is resolved back
    privacy = private_runtime.privacy
    assert privacy.consent.allows_user(USER, "analytics")  # default opt-out grants analytics
    actions = [e["action"] for e in privacy.audit.entries()]
    assert [a for a in actions if a == "consent.set"] == ["consent.set", "consent.set"]
    assert actions.count("PUT /v1/users/{user_id}/consent") == 2  # the admin write itself, too


def test_bad_consent_bodies_are_422(private_client: TestClient) -> None:
    for body in ({"purposes": {"marketing": "yes"}, "source": "x"}, {"purposes": {}, "source": "x"},
                 {"purposes": {"marketing": "granted"}}, {"purposes": {"marketing": "granted"}, "source": "x", "y": 1},
                 [1, 2], {"purposes": {"nope": "granted"}, "source": "x"}):
        response = private_client.put(f"/v1/users/{USER}/consent", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_consent_event_and_enforcement(private_client: TestClient, private_runtime: Runtime) -> None:
    events = [
        {"type": "consent", "anonymous_id": "dev-9", "properties": {"purposes": {"analytics": "denied"},
                                                                    "source": "banner"}},
        {"type": "view", "anonymous_id": "dev-9", "item_id": "i1", "context": {"ip": IP}},
        {"type": "consent", "anonymous_id": "dev-9", "properties": {"purposes": {"analytics": "maybe"}}},
    ]
    answer = private_client.post("/v1/events", json={"events": events}).json()
    assert answer["accepted"] == 2
    assert answer["rejected"] == [{"index": 2, "errors": [
        "properties.purposes.analytics: state must be one of granted, denied, withdrawn"]}]
    stored = private_runtime.log.read(0, 10)
    view = next(e.event for e in stored if e.event.type == "view")
    assert view.anonymous_id == "~stripped" and view.item_id == "i1" and "ip" not in view.context


def test_export_then_erase_leaves_nothing(private_client: TestClient, private_runtime: Runtime) -> None:
    events = [
        {"type": "identify", "user_id": USER, "anonymous_id": "device-zz1", "traits": {"plan": "gold"}},
        {"type": "view", "user_id": USER, "item_id": "i1", "context": {"ip": IP, "geo": {"city": "Bonn", "lat": 50.7}},
         "properties": {"note": f"mail me at {EMAIL} or call {PHONE}"}},
        {"type": "view", "anonymous_id": "device-zz1", "item_id": "i2"},
        {"type": "view", "user_id": OTHER, "item_id": "i1", "context": {"ip": "203.0.113.9"}},
    ]
    segment = private_client.put("/v1/segments/viewers", json={"rule": "count(view, window=30d) >= 1"})
    assert segment.status_code in (200, 201), segment.text
    assert private_client.post("/v1/events", json={"events": events}).json()["accepted"] == 4
    assert private_runtime.pipeline.wait_for(private_runtime.log.head())
    # Derived state holds the person before erasure (features and a segment membership) ...
    assert {s["name"] for s in private_client.get(f"/v1/users/{USER}/segments").json()["segments"]} == {"viewers"}
    features = private_runtime.pipeline.runner("features").consumer.store
    user_key = private_runtime.subject_keys.user(USER)
    assert user_key in features.persons
    private_client.put(f"/v1/users/{USER}/consent", json={"purposes": {"marketing": "granted"}, "source": "banner"})
    wait_for_lake(private_runtime)
    data_dir = private_runtime.settings.data_dir
    # Minimized and pseudonymized at ingest: no raw id, e-mail, phone or full IP stored anywhere.
    assert files_containing(data_dir, [USER, EMAIL, PHONE, "1705550123", IP, "device-zz1"]) == {}

    export = private_client.get(f"/v1/users/{USER}/export")
    assert export.status_code == 200, export.text
    body = export.json()
    assert body["user_id"] == USER and body["profile"]["traits"] == {"plan": "gold"}
    assert {(i["id"], i["kind"]) for i in body["identities"]} == {(USER, "user"), ("device-zz1", "anonymous")}
    assert [e["type"] for e in body["events"]] == ["identify", "view", "view"]
    assert body["events"][1]["user_id"] == USER and body["events"][1]["context"]["ip"] == "198.51.100.0"
    assert body["events"][1]["properties"]["note"] == "mail me at [email] or call [phone]"
    assert body["consent"]["current"]["marketing"]["state"] == "granted"

    erased = private_client.delete(f"/v1/users/{USER}")
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert counts["event_log"] == 3 and counts["lake"] == 3 and counts["person_keys"] >= 2
    for path in (f"/v1/users/{USER}/profile", f"/v1/users/{USER}/export"):
        assert private_client.get(path).status_code == 404
    assert private_client.delete(f"/v1/users/{USER}").status_code == 404
    assert private_client.get(f"/v1/users/{OTHER}/profile").status_code == 200  # neighbours untouched
    # ... and none of it afterwards, in memory or on disk.
    assert user_key not in features.persons
    assert private_client.get(f"/v1/users/{USER}/segments").json()["segments"] == []
    assert user_key not in private_runtime.segments.members("viewers")
    tokens = [k[2:] for k in (private_runtime.subject_keys.user(USER), private_runtime.subject_keys.anon("device-zz1"))]
    assert files_containing(data_dir, [USER, "device-zz1", *tokens, "gold"]) == {}
    assert private_runtime.privacy.audit.verify().ok


def test_erasing_unknown_people_is_404(private_client: TestClient) -> None:
    assert private_client.delete("/v1/users/nobody").status_code == 404
    assert private_client.get("/v1/users/nobody/export").status_code == 404
