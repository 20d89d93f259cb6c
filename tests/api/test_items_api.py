"""The item catalog over HTTP: PUT, GET and batch upserts with per-entry errors."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_strategies import json_values as any_json

PROBLEM = "application/problem+json"


def test_put_then_get(client: TestClient) -> None:
    put = client.put("/v1/items/i1", json={"title": " Up ", "genres": "Animation|Comedy", "year": 2009})
    assert put.status_code == 200, put.text
    expected = {"title": "Up", "genres": ["Animation", "Comedy"], "year": 2009}
    assert put.json()["attributes"] == expected
    got = client.get("/v1/items/i1").json()
    assert got["item_id"] == "i1" and got["attributes"] == expected
    assert got["updated_at"].endswith("Z")


def test_attributes_wrapper_is_accepted(client: TestClient) -> None:
    assert client.put("/v1/items/i1", json={"attributes": {"title": "Up"}}).json()["attributes"] == {
        "title": "Up"
    }


def test_put_replaces_attributes(client: TestClient) -> None:
    client.put("/v1/items/i1", json={"title": "Up", "year": 2009})
    client.put("/v1/items/i1", json={"title": "Up!"})
    assert client.get("/v1/items/i1").json()["attributes"] == {"title": "Up!"}


def test_unicode_item_ids(client: TestClient) -> None:
    path = quote("pizza 🍕", safe="")
    assert client.put(f"/v1/items/{path}", json={"title": "Margherita"}).status_code == 200
    assert client.get(f"/v1/items/{path}").json()["item_id"] == "pizza 🍕"


def test_unknown_item_is_404(client: TestClient) -> None:
    response = client.get("/v1/items/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("item_id", ["a\x00b", "\x00", "x" * 400])
def test_odd_item_ids_never_break_reads(client: TestClient, item_id: str) -> None:
    assert client.get(f"/v1/items/{quote(item_id, safe='')}").status_code == 404


@pytest.mark.parametrize(
    ("path_id", "body", "error"),
    [
        ("i1", [], "attributes: must be an object"),
        ("i1", "title", "attributes: must be an object"),
        ("i1", {"meta": {"a": 1}}, "meta: nested objects are not supported"),
        ("i1", {"available": "yes"}, "available: must be true or false"),
        ("i1", {"tags": [{"a": 1}]}, "tags: lists may only hold strings, numbers and booleans"),
        ("x" * 300, {"title": "t"}, "item_id: longer than 256 characters"),
        ("a\x00b", {"title": "t"}, "item_id: contains control characters"),
        ("a\x1fb", {"title": "t"}, "item_id: contains control characters"),
        ("%20", {"title": "t"}, "item_id: is required and must be a non-empty string"),
    ],
)
def test_bad_items_are_422_naming_the_field(
    client: TestClient, path_id: str, body: object, error: str
) -> None:
    response = client.put(f"/v1/items/{quote(path_id, safe='') if path_id != '%20' else path_id}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert any(e.startswith(error) for e in response.json()["errors"]), response.json()


def test_batch_reports_bad_entries_by_index(client: TestClient) -> None:
    entries = [
        {"item_id": "i1", "title": "Up"},
        {"title": "no id"},
        "not an object",
        {"item_id": 7, "genres": "a|b"},
        {"item_id": "i4", "price": {"eur": 3}},
        {"item_id": "", "title": "empty id"},
    ]
    response = client.post("/v1/items/batch", json={"items": entries})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["upserted"] == 2
    assert body["rejected"] == [
        {"index": 1, "errors": ["item_id: is required and must be a non-empty string"]},
        {"index": 2, "errors": ["item: must be an object"]},
        {"index": 4, "errors": ["price: nested objects are not supported; use flat attributes or lists"]},
        {"index": 5, "errors": ["item_id: is required and must be a non-empty string"]},
    ]
    assert client.get("/v1/items/7").json()["attributes"] == {"genres": ["a", "b"]}
    assert client.get("/v1/items/i4").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"items": "x"}, 422),
        ([], 422),
        ({}, 422),
        ({"items": [{"item_id": f"i{n}"} for n in range(1001)]}, 413),
    ],
)
def test_bad_batches(client: TestClient, body: object, status: int) -> None:
    response = client.post("/v1/items/batch", json=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)


def test_unavailable_items_are_not_recommended(client: TestClient) -> None:
    events = [{"type": "purchase", "user_id": f"u{n}", "item_id": "i1"} for n in range(3)]
    events.append({"type": "view", "user_id": "u9", "item_id": "i2"})
    client.post("/v1/events?wait=true", json={"events": events})
    client.put("/v1/items/i1", json={"title": "Sold out", "available": False})
    items = [i["item_id"] for i in client.get("/v1/users/new/recommendations").json()["items"]]
    assert items == ["i2"]


json_values = any_json()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item_id=st.text(min_size=1, max_size=30), body=json_values, batch=st.lists(json_values, max_size=4))
def test_random_input_never_causes_a_server_error(
    client: TestClient, item_id: str, body: object, batch: list
) -> None:
    path = quote(item_id, safe="")
    headers = {"content-type": "application/json"}
    assert client.put(f"/v1/items/{path}", content=json.dumps(body), headers=headers).status_code < 500
    assert client.get(f"/v1/items/{path}").status_code < 500
    response = client.post("/v1/items/batch", content=json.dumps({"items": batch}), headers=headers)
    assert response.status_code < 500, response.text
