"""POST /v1/events and the published event schema: happy path and the bad-input matrix."""

from __future__ import annotations

import gzip
import json
import zlib

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_strategies import json_values as any_json

from attune.runtime import Runtime

PROBLEM = "application/problem+json"


def view(n: int, **fields) -> dict:
    return {"event_id": f"e{n}", "type": "view", "user_id": f"u{n}", "item_id": f"i{n}", **fields}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_happy_path(client: TestClient, runtime: Runtime) -> None:
    response = client.post(
        "/v1/events?wait=true", json={"events": [view(1), view(2, timestamp="2026-11-22T10:00:00Z")]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    assert runtime.log.count() == 2
    # wait=true answers once profiles reflect the events.
    assert client.get("/v1/users/u2/profile").json()["event_counts"] == {"view": 1}


def test_sent_at_is_allowed_in_the_envelope(client: TestClient) -> None:
    response = client.post("/v1/events", json={"events": [view(1)], "sentAt": "2026-11-22T10:00:00Z"})
    assert response.json()["accepted"] == 1


def test_partial_batch_keeps_good_events(client: TestClient, runtime: Runtime) -> None:
    events = [
        view(0),
        {"type": "view"},
        view(2, timestamp="yesterday"),
        view(3),
        "not an event",
        view(5, colour="red", user_id=True),
    ]
    body = client.post("/v1/events", json={"events": events}).json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert set(rejected) == {1, 2, 4, 5}
    assert rejected[1] == ["user_id: one of user_id or anonymous_id is required"]
    assert rejected[2] == ["timestamp: 'yesterday' is neither ISO 8601 nor an epoch number"]
    assert rejected[4] == ["event: must be a JSON object, not a string"]
    assert sorted(rejected[5]) == [
        "colour: unknown field",
        "user_id: must be a string or an integer (got bool)",
    ]
    assert [e.event.event_id for e in runtime.log.read(0, 10)] == ["e0", "e3"]


def test_repost_reports_duplicates_and_leaves_the_log_unchanged(client: TestClient, runtime: Runtime) -> None:
    batch = {"events": [view(1), view(2), view(3)]}
    assert client.post("/v1/events", json=batch).json()["accepted"] == 3
    head = runtime.log.head()
    again = client.post("/v1/events?wait=true", json=batch)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
    assert runtime.log.head() == head and runtime.log.count() == 3


def test_empty_event_list_is_fine(client: TestClient) -> None:
    assert client.post("/v1/events", json={"events": []}).json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [],
    }


def test_too_many_events_is_413(client: TestClient, runtime: Runtime) -> None:
    events = [{"type": "view", "anonymous_id": "d"} for _ in range(1001)]
    body = assert_problem(client.post("/v1/events", json={"events": events}), 413)
    assert "1001 events" in body["detail"] and "1000" in body["detail"]
    assert runtime.log.count() == 0
    assert client.post("/v1/events", json={"events": events[:1000]}).json()["accepted"] == 1000


def big_body() -> bytes:
    filler = "x" * 8000
    events = [{"type": "view", "anonymous_id": "d", "properties": {"f": filler}} for _ in range(140)]
    body = orjson.dumps({"events": events})
    assert len(body) > 1024 * 1024
    return body


def test_body_over_one_mib_is_413_by_content_length(client: TestClient, runtime: Runtime) -> None:
    body = assert_problem(
        client.post("/v1/events", content=big_body(), headers={"content-type": "application/json"}), 413
    )
    assert "limit is 1048576" in body["detail"]
    assert runtime.log.count() == 0


def test_body_over_one_mib_is_413_when_streamed(client: TestClient, runtime: Runtime) -> None:
    # No Content-Length: the limit is enforced while reading the chunks.
    data = big_body()
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    response = client.post("/v1/events", content=chunks, headers={"content-type": "application/json"})
    assert "exceeds the limit" in assert_problem(response, 413)["detail"]
    assert runtime.log.count() == 0


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "the body is empty"),
        (b"   \n", "the body is empty"),
        (b'{"events": [', "the body is not valid JSON"),
        (b"{'events': []}", "the body is not valid JSON"),
        (b'{"events": [NaN]}', "the body is not valid JSON"),
        (b"\xff\xfe", "the body is not valid JSON"),
    ],
)
def test_unreadable_bodies_are_400(client: TestClient, content: bytes, detail: str) -> None:
    response = client.post("/v1/events", content=content, headers={"content-type": "application/json"})
    assert detail in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "events: is required"),
        ([{"type": "view"}], "events: is required"),
        ("events", "events: is required"),
        (None, "events: is required"),
        ({}, "events: is required"),
        ({"evts": []}, "events: is required"),
        ({"events": "x"}, "events: must be an array"),
        ({"events": {"type": "view"}}, "events: must be an array"),
        ({"events": None}, "events: must be an array"),
        ({"events": [], "batch": []}, "batch: unknown field"),
    ],
)
def test_wrong_envelope_is_422(client: TestClient, body: object, error: str) -> None:
    response = client.post(
        "/v1/events", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert assert_problem(response, 422)["errors"] == [error]


def test_bad_query_parameter_is_422(client: TestClient) -> None:
    response = client.post("/v1/events?wait=maybe", json={"events": []})
    assert assert_problem(response, 422)["errors"][0].startswith("query.wait: ")


def test_gzip_body(client: TestClient, runtime: Runtime) -> None:
    payload = gzip.compress(orjson.dumps({"events": [view(1), view(2)]}))
    response = client.post(
        "/v1/events",
        content=payload,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert response.json()["accepted"] == 2
    deflated = zlib.compress(orjson.dumps({"events": [view(3)]}))
    response = client.post("/v1/events", content=deflated, headers={"content-encoding": "deflate"})
    assert response.json()["accepted"] == 1
    assert runtime.log.count() == 3


def test_broken_gzip_is_400(client: TestClient) -> None:
    response = client.post("/v1/events", content=b"not gzip at all", headers={"content-encoding": "gzip"})
    assert "not valid gzip" in assert_problem(response, 400)["detail"]


def test_gzip_bomb_is_413(client: TestClient, runtime: Runtime) -> None:
    bomb = gzip.compress(b'{"events": [' + b" " * (3 * 1024 * 1024) + b"]}")
    assert len(bomb) < 1024 * 1024
    response = client.post("/v1/events", content=bomb, headers={"content-encoding": "gzip"})
    assert "decompressed body exceeds" in assert_problem(response, 413)["detail"]
    assert runtime.log.count() == 0


def test_event_schema_is_a_json_schema(client: TestClient) -> None:
    response = client.get("/v1/schema/event.json", headers={"Authorization": ""})  # public: no key needed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["required"] == ["type"]
    assert schema["additionalProperties"] is False
    assert schema["anyOf"] == [{"required": ["user_id"]}, {"required": ["anonymous_id"]}]
    contract = {
        "event_id",
        "type",
        "user_id",
        "anonymous_id",
        "item_id",
        "value",
        "timestamp",
        "context",
        "properties",
    }
    assert contract <= set(schema["properties"])
    context = schema["$defs"][schema["properties"]["context"]["anyOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert {"device", "ip", "user_agent", "geo", "page", "session_id"} <= set(context["properties"])
    # Every reference resolves inside the document.
    refs = [m for m in json.dumps(schema).split('"$ref": "')[1:]]
    for ref in (r.split('"', 1)[0] for r in refs):
        assert ref.startswith("#/$defs/") and ref.rsplit("/", 1)[1] in schema["$defs"], ref
    try:
        import jsonschema
    except ImportError:
        return
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(view(1))
    assert not validator.is_valid({"type": "view"})
    assert not validator.is_valid({**view(1), "colour": "red"})


# -- never a 500 -----------------------------------------------------------------------

EVENT_FIELDS = [
    "event_id",
    "type",
    "user_id",
    "anonymous_id",
    "item_id",
    "value",
    "timestamp",
    "context",
    "properties",
    "traits",
]
json_values = any_json(integers=st.integers(min_value=-(2**80), max_value=2**80))
event_like = st.dictionaries(st.sampled_from(EVENT_FIELDS) | st.text(max_size=8), json_values, max_size=6)
bodies = (
    json_values
    | st.fixed_dictionaries({"events": st.lists(event_like | json_values, max_size=4)})
    | st.fixed_dictionaries({"events": json_values})
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=bodies)
def test_random_json_never_causes_a_server_error(client: TestClient, body: object) -> None:
    response = client.post(
        "/v1/events", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        answer = response.json()
        assert set(answer) == {"accepted", "duplicates", "rejected"}
        for rejection in answer["rejected"]:
            assert all(": " in error for error in rejection["errors"]), rejection
