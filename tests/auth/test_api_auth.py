"""Authentication on the native HTTP routes: 401 without a usable key, 403 without the scope."""

from __future__ import annotations

import base64
import time

import pytest
from fastapi.testclient import TestClient

from attune.runtime import Runtime

# (method, path, body, scope the route needs)
ROUTES = [
    ("POST", "/v1/events", {"events": []}, "ingest"),
    ("PUT", "/v1/users/u1", {"traits": {"plan": "pro"}}, "admin"),
    ("POST", "/v1/users/batch", {"users": [{"user_id": "u2", "traits": {"plan": "pro"}}]}, "admin"),
    ("GET", "/v1/users/u1/profile", None, "read"),
    ("GET", "/v1/users/u1/recommendations", None, "read"),
    ("PUT", "/v1/items/i1", {"title": "Up"}, "admin"),
    ("POST", "/v1/items/batch", {"items": [{"item_id": "i2"}]}, "admin"),
    ("GET", "/v1/items/i1", None, "read"),
    ("GET", "/v1/items/i1/similar", None, "read"),
    ("GET", "/v1/models", None, "admin"),
    ("PUT", "/v1/users/u1/consent", {"purposes": {"marketing": "denied"}, "source": "test"}, "admin"),
    ("GET", "/v1/users/u1/consent", None, "read"),
    ("GET", "/v1/users/u1/export", None, "admin"),
    # segments (rows added by the segments helper; "gone" is created here to be deleted below)
    ("PUT", "/v1/segments/fans", {"rule": "count(view, window=7d) >= 1"}, "admin"),
    ("GET", "/v1/segments", None, "read"),
    ("GET", "/v1/segments/conflicts", None, "read"),
    ("GET", "/v1/segments/fans", None, "read"),
    ("GET", "/v1/segments/fans/members", None, "read"),
    ("GET", "/v1/segments/fans/history", None, "read"),
    ("GET", "/v1/users/u1/segments", None, "read"),
    ("GET", "/v1/users/u1/features", None, "read"),
    ("PUT", "/v1/segments/gone", {"rule": "exists(view, window=1d)"}, "admin"),
    ("DELETE", "/v1/segments/gone", None, "admin"),
]
# Erasure succeeds once per person: its admin-only scope is checked on its own below.
ERASURE = {"/v1/users/{user_id}"}
# Need registered versions to answer 200; their admin-only scope is tested in tests/api/test_models_api.py.
MODEL_LIFECYCLE = {"/v1/models/{version}/promote", "/v1/models/rollback"}
GRANTS = {"ingest": {"ingest"}, "read": {"read"}, "admin": {"ingest", "read", "admin"}}


def call(client: TestClient, route: tuple, headers: dict[str, str], **kwargs):
    method, path, body, _ = route
    return client.request(method, path, json=body, headers=headers, **kwargs)


def test_missing_wrong_revoked_or_expired_keys_are_401_on_every_route(client: TestClient, runtime: Runtime) -> None:
    client.headers.pop("Authorization")
    revoked, revoked_secret = runtime.keys.create(frozenset({"admin"}), name="revoked")
    runtime.keys.revoke(revoked.key_id)
    _, expired_secret = runtime.keys.create(frozenset({"admin"}), name="expired", expires_in=0.001)
    time.sleep(0.01)
    bad_headers = (
        {},
        {"Authorization": "Bearer atk_nope_nope"},
        {"Authorization": "Bearer "},
        {"Authorization": "Token x"},
        {"Authorization": f"Bearer {revoked_secret}"},  # admin scope, but revoked
        {"Authorization": f"Bearer {expired_secret}"},  # admin scope, but expired
    )
    answers = {
        (route[1], str(headers)): call(client, route, headers) for route in ROUTES for headers in bad_headers
    }
    wrong = {where: r.status_code for where, r in answers.items() if r.status_code != 401}
    assert not wrong, wrong
    for response in answers.values():
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"] == 'Bearer realm="attune"'


def test_route_scope_matrix(client: TestClient, auth) -> None:
    # Seed the item and the profile the read routes look at, so allowed calls succeed.
    client.put("/v1/items/i1", json={"title": "Up"})
    client.put("/v1/users/u1", json={"plan": "free"})
    expected, got = {}, {}
    for route in ROUTES:
        for scope in ("ingest", "read", "admin"):
            where = f"{route[0]} {route[1]} with {scope}"
            expected[where] = 200 if route[3] in GRANTS[scope] else 403
            response = call(client, route, auth(scope))
            got[where] = response.status_code
            if response.status_code == 403:
                detail = response.json()["detail"]
                assert f"lacks the '{route[3]}' scope" in detail and f"it has: {scope}" in detail, detail
    assert got == expected


def test_revoked_key_is_401(client: TestClient, runtime: Runtime) -> None:
    key, secret = runtime.keys.create(frozenset({"read"}))
    runtime.keys.revoke(key.key_id)
    response = client.get("/v1/items/i1", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "unknown, revoked or expired" in response.json()["detail"]


def basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_key_forms(client: TestClient, keys: dict[str, str]) -> None:
    """Bearer, the Basic-auth user name (Segment SDKs) and ?key= all carry the key."""
    client.headers.pop("Authorization")
    body = {"events": [{"type": "view", "anonymous_id": "d1"}]}
    ingest = keys["ingest"]
    assert (
        client.post("/v1/events", json=body, headers={"Authorization": f"bearer {ingest}"}).status_code == 200
    )
    assert client.post("/v1/events", json=body, headers=basic(ingest)).status_code == 200
    assert client.post("/v1/events", json=body, headers=basic(ingest, "ignored")).status_code == 200
    assert client.post(f"/v1/events?key={ingest}", json=body).status_code == 200
    assert client.post(f"/v1/events?writeKey={ingest}", json=body).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
        "Basic " + base64.b64encode(b":pw").decode(),
    ],
)
def test_malformed_basic_auth_is_401(client: TestClient, header: str) -> None:
    response = client.post("/v1/events", json={"events": []}, headers={"Authorization": header})
    assert response.status_code == 401


# Public on purpose: the pixel answers a GIF whatever the key (it records only with one),
# the event schema and the tracker script are documentation a browser must fetch.
PUBLIC = {"/v1/pixel.gif", "/v1/schema/event.json", "/tracker.js", "/healthz", "/readyz", "/metrics"}
SEGMENT = {"/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/alias", "/v1/group"}


def test_every_route_is_in_the_matrix_or_public_on_purpose(client: TestClient) -> None:
    # Read from the OpenAPI paths: app.routes holds router wrappers, not the routes themselves.
    templated = {"u1": "{user_id}", "i1": "{item_id}", "fans": "{name}", "gone": "{name}"}

    def template(path: str) -> str:
        return "/".join(templated.get(part, part) for part in path.split("/"))

    covered = {(method, template(path)) for method, path, _, _ in ROUTES}
    exempt = PUBLIC | SEGMENT | MODEL_LIFECYCLE | ERASURE
    paths = client.app.openapi()["paths"]
    unlisted = [
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if (method.upper(), path) not in covered and path not in exempt
    ]
    assert len(paths) > len(exempt)  # the schema lists the routes (not router wrappers)
    assert not unlisted, f"routes without an authorization test: {unlisted}"


def test_segment_routes_need_the_ingest_scope(client: TestClient, auth) -> None:
    for path in sorted(SEGMENT):
        assert client.post(path, json={}, headers={"Authorization": ""}).status_code == 401
        assert client.post(path, json={}, headers=auth("read")).status_code == 403


def test_erasure_needs_the_admin_scope(client: TestClient, auth) -> None:
    client.put("/v1/users/u9", json={"plan": "free"})
    assert client.delete("/v1/users/u9", headers={"Authorization": ""}).status_code == 401
    for scope in ("ingest", "read"):
        assert client.delete("/v1/users/u9", headers=auth(scope)).status_code == 403
    assert client.delete("/v1/users/u9", headers=auth("admin")).status_code == 200


def test_ingest_and_read_checks_run_on_the_event_loop_and_admin_checks_in_a_thread() -> None:
    import inspect

    from attune.api import auth

    # FastAPI awaits coroutine dependencies on the loop and runs plain ones in its thread
    # pool (a hop per dependency per request): the frequent checks must be coroutines.
    assert inspect.iscoroutinefunction(auth.IngestKey.dependency)
    assert inspect.iscoroutinefunction(auth.ReadKey.dependency)
    # The admin check writes the audit log: it stays off the loop.
    assert not inspect.iscoroutinefunction(auth.AdminKey.dependency)
    with pytest.raises(ValueError, match="audit"):
        auth.require_on_loop("admin")
