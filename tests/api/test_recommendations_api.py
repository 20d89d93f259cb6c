"""GET /v1/users/{id}/recommendations: never an error for unknown users, seen items excluded."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    """Three items with known popularity (hit > mid > niche); u1 has seen the hit."""
    events = [{"type": "purchase", "user_id": f"b{n}", "item_id": "hit"} for n in range(3)]
    events += [{"type": "add_to_cart", "user_id": "b9", "item_id": "mid"}]
    events += [
        {"type": "view", "user_id": "u1", "item_id": "hit"},
        {"type": "view", "user_id": "b9", "item_id": "niche"},
    ]
    assert client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == 6
    return client


def test_unknown_user_gets_the_popular_list(shop: TestClient) -> None:
    response = shop.get("/v1/users/stranger/recommendations")
    assert response.status_code == 200
    body = response.json()
    assert (body["user_id"], body["model"], body["personalized"]) == ("stranger", "popular", False)
    assert [i["item_id"] for i in body["items"]] == ["hit", "mid", "niche"]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(i["reason"].startswith("popular") for i in body["items"])


def test_known_user_does_not_get_seen_items(shop: TestClient) -> None:
    body = shop.get("/v1/users/u1/recommendations").json()
    assert [i["item_id"] for i in body["items"]] == ["mid", "niche"]


def test_seen_items_follow_identity_stitching(shop: TestClient) -> None:
    events = [
        {"type": "view", "anonymous_id": "d7", "item_id": "mid"},
        {"type": "identify", "anonymous_id": "d7", "user_id": "u7"},
    ]
    shop.post("/v1/events?wait=true", json={"events": events})
    assert [i["item_id"] for i in shop.get("/v1/users/u7/recommendations").json()["items"]] == [
        "hit",
        "niche",
    ]


def test_k_and_exclude(shop: TestClient) -> None:
    assert [i["item_id"] for i in shop.get("/v1/users/x/recommendations?k=1").json()["items"]] == ["hit"]
    body = shop.get("/v1/users/x/recommendations?k=10&exclude=hit,%20niche,").json()
    assert [i["item_id"] for i in body["items"]] == ["mid"]


@pytest.mark.parametrize("k", ["0", "-1", "501", "abc", "1.5", ""])
def test_k_out_of_bounds_is_422(client: TestClient, k: str) -> None:
    response = client.get(f"/v1/users/u1/recommendations?k={k}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0].startswith("query.k: ")


def test_empty_store_gives_an_empty_list(client: TestClient) -> None:
    body = client.get("/v1/users/u1/recommendations").json()
    assert body["items"] == [] and body["personalized"] is False


@pytest.mark.parametrize("user_id", ["a\x00b", "😀", "x" * 1000, " "])
def test_odd_user_ids_still_get_an_answer(shop: TestClient, user_id: str) -> None:
    response = shop.get(f"/v1/users/{quote(user_id, safe='')}/recommendations")
    assert response.status_code == 200
    assert response.json()["user_id"] == user_id


@pytest.fixture
def catalogued(shop: TestClient) -> TestClient:
    """The shop's items with genres; ``mid`` is out of stock."""
    for item, genres, extra in (("hit", ["drama"], {}), ("mid", ["comedy"], {"in_stock": False}), ("niche", ["comedy"], {})):
        assert shop.put(f"/v1/items/{item}", json={"title": item.title(), "genres": genres, **extra}).status_code < 300
    return shop


def test_the_response_has_exactly_the_documented_shape(catalogued: TestClient) -> None:
    body = catalogued.get("/v1/users/u1/recommendations?k=3").json()
    assert set(body) == {"user_id", "model", "personalized", "items"}
    assert all(set(item) == {"item_id", "score", "reason"} for item in body["items"])


def test_out_of_stock_items_never_appear(catalogued: TestClient) -> None:
    assert "mid" not in [i["item_id"] for i in catalogued.get("/v1/users/x/recommendations").json()["items"]]
    assert "mid" not in [i["item_id"] for i in catalogued.get("/v1/items/hit/similar").json()["items"]]


def test_category_filters(catalogued: TestClient) -> None:
    def ids(query: str) -> list[str]:
        return [i["item_id"] for i in catalogued.get(f"/v1/users/x/recommendations?{query}").json()["items"]]

    assert ids("category=Comedy") == ["niche"]
    assert ids("exclude_category=comedy") == ["hit"]
    assert ids("category=drama,comedy&exclude=hit") == ["niche"]
    assert ids("category=horror") == []


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots"])
def test_diversity_out_of_range_is_422(catalogued: TestClient, value: str) -> None:
    response = catalogued.get(f"/v1/users/x/recommendations?diversity={value}")
    assert response.status_code == 422
    assert response.json()["errors"][0].startswith("query.diversity: ")


def test_similar_items_take_the_same_filters(catalogued: TestClient) -> None:
    body = catalogued.get("/v1/items/hit/similar?exclude_category=drama&diversity=0.5").json()
    assert [i["item_id"] for i in body["items"]] == ["niche"]


def test_recommendations_need_the_read_scope(catalogued: TestClient, auth) -> None:
    assert catalogued.get("/v1/users/x/recommendations", headers={"Authorization": ""}).status_code == 401
    assert catalogued.get("/v1/users/x/recommendations", headers=auth("ingest")).status_code == 403
    assert catalogued.get("/v1/users/x/recommendations", headers=auth("read")).status_code == 200
