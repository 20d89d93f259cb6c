"""PUT /v1/users/{id} (CRM trait sync) and GET /v1/users/{id}/profile."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_strategies import json_values as any_json

from attune.api.app import create_app

PROBLEM = "application/problem+json"


def test_put_traits_then_profile_shows_them_at_once(client: TestClient) -> None:
    put = client.put("/v1/users/u1", json={"traits": {"plan": "pro", "age": 31}, "source": "crm"})
    assert put.status_code == 200, put.text
    assert put.json()["traits"] == {"plan": "pro", "age": 31}
    profile = client.get("/v1/users/u1/profile").json()
    assert profile["user_id"] == "u1"
    assert profile["traits"] == {"plan": "pro", "age": 31}
    assert profile["trait_sources"]["plan"]["source"] == "crm"
    assert profile["event_counts"] == {"identify": 1}


def test_bare_traits_object_is_accepted(client: TestClient) -> None:
    assert client.put("/v1/users/u1", json={"city": "Oslo"}).json()["traits"] == {"city": "Oslo"}
    profile = client.get("/v1/users/u1/profile").json()
    assert profile["traits"] == {"city": "Oslo"} and profile["trait_sources"]["city"]["source"] == "api"


def test_later_puts_update_and_add(client: TestClient) -> None:
    client.put("/v1/users/u1", json={"traits": {"plan": "free", "city": "Oslo"}})
    client.put("/v1/users/u1", json={"traits": {"plan": "pro"}})
    assert client.get("/v1/users/u1/profile").json()["traits"] == {"plan": "pro", "city": "Oslo"}


def test_profile_combines_events_and_traits(client: TestClient) -> None:
    events = [
        {
            "type": "view",
            "anonymous_id": "d1",
            "item_id": "i1",
            "timestamp": "2026-11-20T10:00:00Z",
            "value": 2,
        },
        {"type": "identify", "anonymous_id": "d1", "user_id": "u1", "timestamp": "2026-11-20T10:05:00Z"},
    ]
    assert client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == 2
    profile = client.get("/v1/users/u1/profile").json()
    assert profile["anonymous_ids"] == ["d1"]
    assert profile["first_seen"] == "2026-11-20T10:00:00Z"
    assert profile["recent_interactions"] == [
        {"item_id": "i1", "type": "view", "timestamp": "2026-11-20T10:00:00Z", "value": 2.0}
    ]


def test_older_crm_data_wins_over_newer_web_data(make_runtime) -> None:
    runtime = make_runtime(profiles={"source_priority": {"crm": 10}})
    _, admin = runtime.keys.create(frozenset({"admin"}))
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {admin}"}) as client:
        crm = {"traits": {"tier": "gold"}, "source": "crm", "timestamp": "2026-01-01T00:00:00Z"}
        assert client.put("/v1/users/u1", json=crm).status_code == 200
        web = {
            "traits": {"tier": "basic", "city": "Oslo"},
            "source": "web",
            "timestamp": "2026-11-01T00:00:00Z",
        }
        answer = client.put("/v1/users/u1", json=web).json()
        assert answer["traits"] == {"tier": "gold", "city": "Oslo"}
        assert answer["trait_sources"]["tier"] == {"source": "crm", "updated_at": "2026-01-01T00:00:00Z"}
        # Events from the tracker follow the same rule.
        event = {"type": "identify", "user_id": "u1", "traits": {"tier": "silver"}}
        client.post("/v1/events?wait=true", json={"events": [event]})
        assert client.get("/v1/users/u1/profile").json()["traits"]["tier"] == "gold"


def test_without_priorities_the_newest_value_wins(client: TestClient) -> None:
    client.put(
        "/v1/users/u1",
        json={"traits": {"tier": "gold"}, "source": "crm", "timestamp": "2026-01-01T00:00:00Z"},
    )
    answer = client.put(
        "/v1/users/u1", json={"traits": {"tier": "basic"}, "source": "web", "timestamp": 1790000000}
    )
    assert answer.json()["traits"] == {"tier": "basic"}


def test_unknown_user_profile_is_404(client: TestClient) -> None:
    response = client.get("/v1/users/nobody/profile")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "nobody" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "body: must be an object"),
        ("plan", "body: must be an object"),
        ({"traits": {"a": 1}, "source": ""}, "source: must be a non-empty string"),
        ({"traits": {"a": 1}, "source": 5}, "source: must be a non-empty string"),
        ({"traits": {"a": 1}, "extra": 1}, "extra: unknown field"),
        ({"traits": "gold", "source": "crm"}, "traits: must be an object"),
        ({"traits": [1], "source": "crm"}, "traits: must be an object"),
        ({"traits": {"a": 1}, "timestamp": "yesterday"}, "timestamp: 'yesterday' is neither ISO 8601"),
        (
            {"traits": {"a": 1}, "timestamp": "3000-01-01T00:00:00Z"},
            "timestamp: 3000-01-01T00:00:00Z is more than",
        ),
        ({"traits": {"s": "x" * 9000}}, "traits.s: longer than 8192 characters"),
    ],
)
def test_bad_trait_bodies_are_422_naming_the_field(client: TestClient, body: object, error: str) -> None:
    response = client.put("/v1/users/u1", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert any(e.startswith(error) for e in response.json()["errors"]), response.json()
    assert client.get("/v1/users/u1/profile").status_code == 404  # nothing was written


@pytest.mark.parametrize(
    ("user_id", "error"),
    [
        ("x" * 300, "user_id: longer than 256 characters (300)"),
        ("a\x01b", "user_id: contains control characters"),
    ],
)
def test_bad_user_ids_are_422(client: TestClient, user_id: str, error: str) -> None:
    response = client.put(f"/v1/users/{quote(user_id, safe='')}", json={"a": 1})
    assert response.status_code == 422
    assert response.json()["errors"] == [error]


def test_unicode_user_ids_work(client: TestClient) -> None:
    path = quote("Zoë 😀", safe="")
    assert client.put(f"/v1/users/{path}", json={"a": 1}).status_code == 200
    assert client.get(f"/v1/users/{path}/profile").json()["user_id"] == "Zoë 😀"


@pytest.mark.parametrize("user_id", ["a\x00b", "\x00", "%", "😀" * 300])
def test_odd_ids_never_break_profile_reads(client: TestClient, user_id: str) -> None:
    response = client.get(f"/v1/users/{quote(user_id, safe='')}/profile")
    assert response.status_code == 404


json_values = any_json()
trait_bodies = json_values | st.fixed_dictionaries(
    {"traits": json_values}, optional={"source": json_values, "timestamp": json_values}
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.text(min_size=1, max_size=30), body=trait_bodies)
def test_random_input_never_causes_a_server_error(client: TestClient, user_id: str, body: object) -> None:
    path = quote(user_id, safe="")
    response = client.put(
        f"/v1/users/{path}", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    assert client.get(f"/v1/users/{path}/profile").status_code < 500


def test_users_batch_keeps_good_entries_and_reports_bad_ones_by_index(client: TestClient) -> None:
    body = {
        "users": [
            {"user_id": "b1", "traits": {"plan": "pro"}, "source": "crm"},
            {"traits": {"plan": "free"}},
            {"user_id": "b2", "city": "Oslo"},
            {"user_id": "b3", "traits": "gold"},
            {"user_id": "b4", "traits": {"plan": "pro"}, "timestamp": 1e20},
            "not an object",
        ]
    }
    response = client.post("/v1/users/batch", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["upserted"] == 2
    assert [r["index"] for r in answer["rejected"]] == [1, 3, 4, 5]
    assert answer["rejected"][0]["errors"] == ["user_id: is required"]
    assert answer["rejected"][1]["errors"] == ["traits: must be an object"]
    assert answer["rejected"][2]["errors"][0].startswith("timestamp:")
    # The answer waits for the profiles, so they show the traits at once.
    assert client.get("/v1/users/b1/profile").json()["trait_sources"]["plan"]["source"] == "crm"
    assert client.get("/v1/users/b2/profile").json()["traits"] == {"city": "Oslo"}


def test_users_batch_envelope_and_size_errors(client: TestClient) -> None:
    assert client.post("/v1/users/batch", json={"users": {}}).status_code == 422
    too_many = {"users": [{"user_id": f"u{i}", "traits": {}} for i in range(1001)]}
    assert client.post("/v1/users/batch", json=too_many).status_code == 413
