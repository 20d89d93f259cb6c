"""Marketing segments hold only people with marketing consent (opt-in by default)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attune.runtime import Runtime


def test_marketing_segment_needs_marketing_consent(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    for name, purpose in (("shoppers", None), ("promo", "marketing")):
        body = {"rule": "count(view, window=30d) >= 1", **({"purpose": purpose} if purpose else {})}
        assert private_client.put(f"/v1/segments/{name}", json=body).status_code in (200, 201)
    private_client.put(
        "/v1/users/ann/consent", json={"purposes": {"marketing": "granted"}, "source": "banner"}
    )
    events = [{"type": "view", "user_id": user, "item_id": "i1"} for user in ("ann", "ben")]
    assert private_client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == 2
    assert private_runtime.pipeline.wait_for(private_runtime.log.head())
    segments_of = {
        user: {s["name"] for s in private_client.get(f"/v1/users/{user}/segments").json()["segments"]}
        for user in ("ann", "ben")
    }
    assert segments_of == {"ann": {"shoppers", "promo"}, "ben": {"shoppers"}}


def _segments(client: TestClient, user: str) -> set[str]:
    response = client.get(f"/v1/users/{user}/segments")
    assert response.status_code == 200
    return {s["name"] for s in response.json()["segments"]}


def _members(client: TestClient, name: str) -> set[str]:
    return {m["user_id"] for m in client.get(f"/v1/segments/{name}/members").json()["members"]}


def _consent(client: TestClient, user: str, **purposes: str) -> None:
    response = client.put(f"/v1/users/{user}/consent", json={"purposes": purposes, "source": "banner"})
    assert response.status_code == 200, response.text


def _views(client: TestClient, runtime: Runtime, users: tuple[str, ...]) -> None:
    events = [{"type": "view", "user_id": user, "item_id": "i1"} for user in users]
    assert client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == len(users)
    assert runtime.pipeline.wait_for(runtime.log.head())


def test_withdrawing_personalization_hides_segments_on_the_next_request(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    assert private_client.put(
        "/v1/segments/shoppers", json={"rule": "count(view, window=30d) >= 1"}
    ).status_code in (
        200,
        201,
    )
    _views(private_client, private_runtime, ("ann", "ben"))
    assert _segments(private_client, "ann") == {"shoppers"}
    _consent(private_client, "ann", personalization="denied")
    # No event in between: the very next reads leave ann out, ben keeps his membership.
    assert _segments(private_client, "ann") == set()
    assert _members(private_client, "shoppers") == {"ben"}
    _consent(private_client, "ann", personalization="granted")
    assert _segments(private_client, "ann") == {"shoppers"}
    assert _members(private_client, "shoppers") == {"ann", "ben"}


def test_without_personalization_nobody_enters_a_segment(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    _consent(private_client, "cat", personalization="denied", marketing="granted")
    for name, purpose in (("shoppers", None), ("promo", "marketing")):
        body = {"rule": "count(view, window=30d) >= 1", **({"purpose": purpose} if purpose else {})}
        assert private_client.put(f"/v1/segments/{name}", json=body).status_code in (200, 201)
    _views(private_client, private_runtime, ("cat", "dan"))
    assert _segments(private_client, "cat") == set()
    assert _segments(private_client, "dan") == {"shoppers"}
    # Not only hidden: the engine never let cat in (stored memberships, and the bulk path agrees).
    engine = private_runtime.segments
    assert {engine.keys.display_id(k) for k, _ in engine._members.get("shoppers", {}).items()} == {"dan"}
    engine.evaluate_all()
    assert {engine.keys.display_id(k) for k, _ in engine._members.get("shoppers", {}).items()} == {"dan"}
    assert not engine._members.get("promo")


def test_marketing_segment_needs_marketing_and_personalization(
    private_client: TestClient, private_runtime: Runtime
) -> None:
    body = {"rule": "count(view, window=30d) >= 1", "purpose": "marketing"}
    assert private_client.put("/v1/segments/promo", json=body).status_code in (200, 201)
    for user in ("ann", "ben"):
        _consent(private_client, user, marketing="granted")
    _views(private_client, private_runtime, ("ann", "ben"))
    assert _members(private_client, "promo") == {"ann", "ben"}
    _consent(private_client, "ann", personalization="denied")  # marketing still granted
    _consent(private_client, "ben", marketing="denied")  # personalization still granted (opt-out)
    assert _segments(private_client, "ann") == set()
    assert _segments(private_client, "ben") == set()
    assert _members(private_client, "promo") == set()
    _consent(private_client, "ann", personalization="granted")
    assert _segments(private_client, "ann") == {"promo"}
    assert _members(private_client, "promo") == {"ann"}
