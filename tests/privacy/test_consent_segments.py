"""Marketing segments hold only people with marketing consent (opt-in by default)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attune.runtime import Runtime


def test_marketing_segment_needs_marketing_consent(private_client: TestClient, private_runtime: Runtime) -> None:
    for name, purpose in (("shoppers", None), ("promo", "marketing")):
        body = {"rule": "count(view, window=30d) >= 1", **({"purpose": purpose} if purpose else {})}
        assert private_client.put(f"/v1/segments/{name}", json=body).status_code in (200, 201)
    private_client.put("/v1/users/ann/consent", json={"purposes": {"marketing": "granted"}, "source": "banner"})
    events = [{"type": "view", "user_id": user, "item_id": "i1"} for user in ("ann", "ben")]
    assert private_client.post("/v1/events?wait=true", json={"events": events}).json()["accepted"] == 2
    assert private_runtime.pipeline.wait_for(private_runtime.log.head())
    segments_of = {
        user: {s["name"] for s in private_client.get(f"/v1/users/{user}/segments").json()["segments"]}
        for user in ("ann", "ben")
    }
    assert segments_of == {"ann": {"shoppers", "promo"}, "ben": {"shoppers"}}
