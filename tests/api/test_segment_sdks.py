"""The official Segment and RudderStack Python SDKs, unchanged, against a real Attune server
(ingesting in a worker process, as ``attune serve`` does).

A real uvicorn server runs in a background thread on a free loopback port, over a
runtime in a temporary data directory. Consumers do not run in the background: each
test drains them with ``runtime.catch_up()`` so the state it checks is settled.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as segment_analytics
import uvicorn
from rudderstack.analytics.request import APIError as RudderAPIError
from segment.analytics.request import APIError as SegmentAPIError
from segment.analytics.request import post as segment_post

from attune.api.app import create_app
from attune.events.model import Event
from attune.runtime import Runtime
from attune.settings import load_settings


@dataclass
class Server:
    """A running Attune server and the handles tests need."""

    url: str
    runtime: Runtime
    write_key: str
    read_key: str

    def events(self) -> list[Event]:
        """Every event in the log, after draining the consumers."""
        self.runtime.catch_up()
        return [logged.event for logged in self.runtime.log.read(0, 10_000)]

    def events_of(self, user_id: str) -> list[Event]:
        """Events that carry ``user_id``, oldest first."""
        return [e for e in self.events() if e.user_id == user_id]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Start uvicorn on a free port over a fresh runtime; stop it after the module."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("segment-sdks"))
    runtime = Runtime.open(settings)
    _, write_key = runtime.keys.create(frozenset({"ingest"}), name="segment write key")
    _, read_key = runtime.keys.create(frozenset({"read"}), name="read only")
    # As under `attune serve`: the SDKs' batches are ingested in a worker process.
    workers = runtime.start_ingest_workers(1)
    assert workers is not None and workers.wait_ready(), "the ingest worker did not start"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime, run_consumers=False), log_level="warning", access_log=False, lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(500):
        if uv.started or not thread.is_alive():
            break
        thread.join(0.01)
    assert uv.started, "the server did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", runtime, write_key, read_key)
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
        runtime.close()


def uid(prefix: str) -> str:
    """A fresh id, so tests sharing the server never see each other's people."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def segment_client(server: Server, errors: list, **kwargs) -> segment_analytics.Client:
    """A Segment client pointed at the test server that records delivery errors."""
    return segment_analytics.Client(
        server.write_key,
        host=server.url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
        **kwargs,
    )


def test_segment_sdk_background_client_delivers_every_call(server: Server) -> None:
    user, old_user, anon = uid("seg"), uid("seg-old"), uid("anon")
    errors: list = []
    client = segment_client(server, errors, upload_interval=0.05)
    try:
        # An explicit, earlier time: the SDK's millisecond clock could give both identifies the same one.
        client.identify(
            old_user,
            {"plan": "free", "age": 31},
            timestamp=datetime.now(UTC) - timedelta(minutes=5),
            message_id=f"{old_user}-identify",
        )
        client.track(
            old_user,
            "Product Viewed",
            {"product_id": "sku-1", "price": 19.5},
            anonymous_id=anon,
            context={"ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
            message_id=f"{old_user}-view",
        )
        client.track(user, "Order Completed", {"revenue": 42.0, "order_id": "o-1"})
        client.identify(user, {"plan": "pro", "email": "seg@example.com"})
        client.page(user, "Docs", "Pricing", {"url": "https://ex.com/pricing", "title": "Plans"})
        client.screen(user, name="Home", properties={"variant": "b"})
        client.group(user, "acme", {"name": "Acme", "seats": 40})
        client.alias(old_user, user)
        client.flush()
    finally:
        client.shutdown()
    assert errors == []

    new_events = server.events_of(user)
    assert [e.type for e in new_events] == [
        "purchase",
        "identify",
        "page_view",
        "screen_view",
        "group",
        "alias",
    ]
    purchase, identify, page, screen, group, alias = new_events
    assert purchase.value == 42.0
    assert purchase.properties["order_id"] == "o-1"
    assert purchase.context["library"]["name"] == "analytics-python"
    assert all(e.context["source"] == "segment" for e in new_events)
    assert identify.traits == {"plan": "pro", "email": "seg@example.com"}
    assert page.context["page"] == {
        "url": "https://ex.com/pricing",
        "title": "Plans",
        "name": "Pricing",
        "category": "Docs",
    }
    assert screen.properties == {"variant": "b", "name": "Home"}
    assert group.properties == {"group_id": "acme", "group_traits": {"name": "Acme", "seats": 40}}
    assert alias.properties == {"previous_id": old_user}

    old_events = {e.event_id: e for e in server.events_of(old_user)}
    view = old_events[f"{old_user}-view"]
    assert (view.type, view.item_id, view.value, view.anonymous_id) == ("view", "sku-1", 19.5, anon)
    assert view.context["ip"] == "203.0.113.0"  # truncated to /24 before storage (privacy)
    assert view.context["device"]["type"] == "desktop"  # enriched from the user agent

    profile = server.runtime.profiles.get(user)
    assert old_user in profile.merged_user_ids
    assert anon in profile.anonymous_ids
    # Traits of both people are on the merged profile; the newer "plan" wins.
    assert profile.traits == {"plan": "pro", "email": "seg@example.com", "age": 31}
    assert profile.event_counts["view"] == 1
    assert profile.event_counts["purchase"] == 1
    # The old id now resolves to the merged profile.
    assert server.runtime.profiles.get(old_user).user_id == user


def test_rudderstack_sdk_module_api_with_data_plane_url(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, old_user = uid("rs"), uid("rs-old")
    errors: list = []
    # The documented RudderStack setup: module attributes, then module-level calls.
    monkeypatch.setattr(rudder_analytics, "write_key", server.write_key)
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", server.url, raising=False)
    monkeypatch.setattr(rudder_analytics, "on_error", lambda error, batch: errors.append(error))
    monkeypatch.setattr(rudder_analytics, "max_retries", 0)
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    try:
        rudder_analytics.identify(
            old_user, {"tier": "silver"}, timestamp=datetime.now(UTC) - timedelta(minutes=5)
        )
        rudder_analytics.identify(user, {"tier": "gold", "country": "DE"})
        rudder_analytics.track(user, "Product Added", {"sku": "sku-7", "price": 5, "quantity": 2})
        rudder_analytics.track(user, "Product Rated", {"product_id": "sku-7", "rating": 4})
        rudder_analytics.page(
            user, name="Home", properties={"url": "https://ex.com/", "referrer": "https://r.io/"}
        )
        rudder_analytics.screen(user, name="Cart")
        rudder_analytics.group(user, "team-9", {"name": "Team Nine"})
        rudder_analytics.alias(old_user, user)
        rudder_analytics.flush()
    finally:
        client = rudder_analytics.default_client
        if client is not None:
            client.shutdown()
    assert client is not None and client.host == server.url
    assert client.gzip is True  # RudderStack gzips by default: this test covers gzip bodies
    assert errors == []

    events = server.events_of(user)
    assert [e.type for e in events] == [
        "identify",
        "add_to_cart",
        "rating",
        "page_view",
        "screen_view",
        "group",
        "alias",
    ]
    identify, added, rated, page, screen, group, alias = events
    # RudderStack sends identify traits only as context.traits.
    assert identify.traits == {"tier": "gold", "country": "DE"}
    assert "traits" not in identify.context
    assert (added.item_id, added.value) == ("sku-7", 5)
    assert (rated.item_id, rated.value) == ("sku-7", 4)
    assert page.context["page"] == {"url": "https://ex.com/", "referrer": "https://r.io/", "name": "Home"}
    assert screen.properties == {"name": "Cart"}
    assert group.properties["group_id"] == "team-9"
    assert alias.properties == {"previous_id": old_user}

    profile = server.runtime.profiles.get(user)
    assert profile.traits == {"tier": "gold", "country": "DE"}
    assert old_user in profile.merged_user_ids
    assert {i["item_id"] for i in profile.recent_interactions} == {"sku-7"}


def test_resent_message_id_is_reported_as_duplicate(server: Server) -> None:
    user = uid("dup")
    message = {
        "type": "track",
        "event": "Product Viewed",
        "userId": user,
        "messageId": f"{user}-m1",
        "properties": {"product_id": "p-1"},
    }
    # The SDK's own transport returns the response, so the answer can be read.
    first = segment_post(server.write_key, server.url, batch=[dict(message)])
    second = segment_post(server.write_key, server.url, gzip=True, batch=[dict(message)])
    assert first.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    assert second.json() == {"success": True, "accepted": 0, "duplicates": 1, "rejected": []}

    client = segment_client(server, [], sync_mode=True)
    client.track(user, "Product Viewed", {"product_id": "p-1"}, message_id=f"{user}-m1")
    assert [e.event_id for e in server.events_of(user)] == [f"{user}-m1"]


def test_segment_sdk_gzip_body(server: Server) -> None:
    user = uid("gz")
    client = segment_client(server, [], sync_mode=True, gzip=True)
    client.track(user, "Checkout Completed", {"total": "99.90"})
    events = server.events_of(user)
    assert [(e.type, e.value) for e in events] == [("purchase", 99.9)]


def test_bad_write_key_is_refused_with_401(server: Server) -> None:
    segment = segment_analytics.Client("not-a-key", host=server.url, sync_mode=True, max_retries=0)
    with pytest.raises(SegmentAPIError) as seg_error:
        segment.track("u", "Product Viewed")
    # The error body carries Segment's "code" and "message", which the SDKs put in their APIError.
    assert (seg_error.value.status, seg_error.value.code) == (401, "unauthorized")

    rudder = rudder_analytics.Client("not-a-key", host=server.url, sync_mode=True, max_retries=0)
    with pytest.raises(RudderAPIError) as rudder_error:
        rudder.track("u", "Product Viewed")
    assert (rudder_error.value.status, rudder_error.value.code) == (401, "unauthorized")


def test_key_without_ingest_scope_is_refused_with_403(server: Server) -> None:
    client = segment_analytics.Client(server.read_key, host=server.url, sync_mode=True, max_retries=0)
    with pytest.raises(SegmentAPIError) as error:
        client.identify("u", {"a": 1})
    assert error.value.status == 403


# -- the single-message endpoints and error answers, over plain HTTP -------------------


def post(
    server: Server,
    path: str,
    body: object,
    *,
    key: str | None = None,
    gzipped: bool = False,
    raw: bytes | None = None,
) -> httpx.Response:
    """POST to the server with the write key as the Basic-auth user name."""
    content = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        content = gzip.compress(content)
        headers["Content-Encoding"] = "gzip"
    return httpx.post(
        f"{server.url}{path}",
        content=content,
        headers=headers,
        auth=(key or server.write_key, ""),
        timeout=10,
    )


@pytest.mark.parametrize(
    ("path", "message", "expected_type"),
    [
        ("/v1/track", {"event": "Product Added", "properties": {"sku": "k"}}, "add_to_cart"),
        ("/v1/identify", {"traits": {"plan": "x"}}, "identify"),
        ("/v1/page", {"name": "Home", "properties": {"url": "https://ex.com/"}}, "page_view"),
        ("/v1/screen", {"name": "Home"}, "screen_view"),
        ("/v1/alias", {"previousId": "someone-before"}, "alias"),
        ("/v1/group", {"groupId": "g-1", "traits": {"name": "G"}}, "group"),
    ],
)
def test_single_message_endpoints(server: Server, path: str, message: dict, expected_type: str) -> None:
    user = uid("single")
    response = post(server, path, {**message, "userId": user, "messageId": f"{user}-1"}, gzipped=True)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    [event] = server.events_of(user)
    assert (event.event_id, event.type) == (f"{user}-1", expected_type)


def test_batch_reports_unmappable_messages_and_keeps_neighbours(server: Server) -> None:
    user = uid("mixed")
    body = {
        "batch": [
            {"type": "track", "event": "Product Viewed", "userId": user, "properties": {"sku": "a"}},
            {"type": "track", "event": "Product Viewed", "properties": {"sku": "b"}},
            {"type": "teleport", "userId": user},
            {"type": "track", "userId": user},
            {"type": "track", "event": "x", "userId": "u" * 300},
            {"type": "track", "event": "x", "userId": user, "properties": {"sku": "bad\u0001id"}},
            {"type": "identify", "userId": user, "traits": {"plan": "p"}, "somethingNew": True},
        ],
        "sentAt": "2024-01-01T00:00:00Z",
        "context": {"locale": "en-GB"},
        "writeKey": "ignored",
    }
    response = post(server, "/v1/batch", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["success"], answer["accepted"], answer["duplicates"]) == (True, 2, 0)
    assert [r["index"] for r in answer["rejected"]] == [1, 2, 3, 4, 5]
    reasons = {r["index"]: r["errors"][0] for r in answer["rejected"]}
    assert reasons[1] == "userId: one of userId or anonymousId is required"
    assert reasons[2].startswith("type: 'teleport' is not a Segment call type")
    assert reasons[3] == "event: is required for track"
    assert reasons[4] == "userId: longer than 256 characters (300)"
    assert reasons[5] == "properties.sku: contains control characters"
    events = server.events_of(user)
    assert [e.type for e in events] == ["view", "identify"]
    assert all(e.context["locale"] == "en-GB" for e in events)


@pytest.mark.parametrize(
    ("path", "body", "raw", "status", "fragment"),
    [
        ("/v1/batch", None, b"{not json", 400, "not valid JSON"),
        ("/v1/batch", None, b"", 400, "empty"),
        ("/v1/batch", {"messages": []}, None, 422, "batch: is required"),
        ("/v1/batch", {"batch": {"type": "track"}}, None, 422, "batch: must be an array"),
        ("/v1/batch", {"batch": [], "sentAt": "later"}, None, 422, "sentAt: "),
        ("/v1/batch", {"batch": [], "context": [1]}, None, 422, "context: must be an object"),
        ("/v1/track", [1, 2], None, 422, "body: must be an object"),
        ("/v1/batch", {"batch": [{"type": "page", "userId": "u"}] * 1001}, None, 413, "limit is 1000"),
        ("/v1/batch", None, b'{"batch": ["' + b"x" * (1024 * 1024) + b'"]}', 413, "limit"),
    ],
)
def test_malformed_bodies_get_problem_json(
    server: Server, path: str, body: object, raw: bytes | None, status: int, fragment: str
) -> None:
    response = post(server, path, body, raw=raw)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["message"] == problem["detail"]
    assert problem["code"] in {"bad_request", "validation_failed", "payload_too_large"}
    assert fragment in problem["detail"] + " ".join(problem.get("errors", []))


def test_gzip_bomb_beyond_the_limit_is_413(server: Server) -> None:
    body = b'{"batch": [], "pad": "' + b" " * (2 * 1024 * 1024) + b'"}'
    response = post(server, "/v1/batch", None, raw=body, gzipped=True)
    assert response.status_code == 413
