"""Mapping Segment messages onto native events: known inputs, known outputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_strategies import json_values as any_json

from attune.events.normalize import EventNormalizer
from attune.events.schema import EventIn
from attune.events.segment_compat import (
    SEGMENT_TYPES,
    map_message,
    map_messages,
    parse_sent_at,
    segment_errors,
)
from attune.settings import IngestSettings

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
NOW_ISO = "2023-11-14T22:13:20Z"


def mapped(message: dict, **kwargs) -> dict:
    """Map a message that must map; fail the test with its reasons otherwise."""
    result = map_message(message, received_at=NOW, **kwargs)
    assert isinstance(result, dict), result
    return result


def test_track_product_viewed_maps_every_field() -> None:
    event = mapped(
        {
            "type": "track",
            "event": "Product Viewed",
            "messageId": "m-1",
            "userId": "u-1",
            "anonymousId": "a-1",
            "timestamp": "2023-11-14T22:00:00Z",
            "properties": {"product_id": "p-9", "sku": "S-1", "price": 19.5, "category": "shoes"},
            "integrations": {"All": True},
            "channel": "server",
        }
    )
    assert event == {
        "event_id": "m-1",
        "type": "view",
        "user_id": "u-1",
        "anonymous_id": "a-1",
        "item_id": "p-9",
        "value": 19.5,
        "timestamp": NOW - 800,
        "properties": {"product_id": "p-9", "sku": "S-1", "price": 19.5, "category": "shoes"},
        "context": {"source": "segment", "segment": {"type": "track", "event": "Product Viewed"}},
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Product Viewed", "view"),
        ("Product Added", "add_to_cart"),
        ("Product Removed", "remove_from_cart"),
        ("Order Completed", "purchase"),
        ("Products Searched", "search"),
        ("Product Rated", "rating"),
        ("Signed Up", "signed_up"),
        ("Video Played (Trailer)!", "video_played_trailer"),
    ],
)
def test_track_event_names_become_canonical_types(name: str, expected: str) -> None:
    assert mapped({"type": "track", "event": name, "userId": "u"})["type"] == expected


@pytest.mark.parametrize(
    ("properties", "item_id", "item_origin"),
    [
        ({"product_id": "p", "sku": "s", "item_id": "i"}, "p", "properties.product_id"),
        ({"sku": "s", "item_id": "i"}, "s", "properties.sku"),
        ({"item_id": 42}, "42", "properties.item_id"),
        ({"product_id": "", "sku": "s"}, "s", "properties.sku"),
        ({"name": "no id"}, None, None),
    ],
)
def test_item_id_precedence(properties: dict, item_id: str | None, item_origin: str | None) -> None:
    origins: dict[str, str] = {}
    event = map_message(
        {"type": "track", "event": "Product Clicked", "userId": "u", "properties": properties},
        received_at=NOW,
        origins=origins,
    )
    assert isinstance(event, dict)
    assert event.get("item_id") == item_id
    assert origins.get("item_id") == item_origin


@pytest.mark.parametrize(
    ("event_name", "properties", "value"),
    [
        ("Order Completed", {"value": 1, "revenue": 2, "total": 3, "price": 4, "rating": 5}, 1),
        ("Order Completed", {"revenue": 2, "total": 3, "price": 4}, 2),
        ("Order Completed", {"total": 3, "price": 4}, 3),
        ("Product Added", {"price": "12.50"}, 12.5),
        ("Product Added", {"price": "free", "rating": 4}, 4),
        ("Product Added", {"value": True, "price": 7}, 7),
        # A rating event's own number is its rating, not the item's price.
        ("Product Rated", {"price": 30, "rating": 4.5}, 4.5),
        ("Product Viewed", {"name": "x"}, None),
    ],
)
def test_value_precedence(event_name: str, properties: dict, value: float | None) -> None:
    event = mapped({"type": "track", "event": event_name, "userId": "u", "properties": properties})
    assert event.get("value") == value


def test_page_builds_context_page_from_properties_and_name() -> None:
    event = mapped(
        {
            "type": "page",
            "anonymousId": "a-1",
            "name": "Pricing",
            "category": "Docs",
            "properties": {
                "url": "https://ex.com/pricing",
                "referrer": "https://google.com/",
                "title": "Plans",
            },
            "context": {"page": {"url": "https://stale.example/", "path": "/pricing"}},
        }
    )
    assert event["type"] == "page_view"
    assert event["context"]["page"] == {
        "url": "https://ex.com/pricing",
        "path": "/pricing",
        "referrer": "https://google.com/",
        "title": "Plans",
        "name": "Pricing",
        "category": "Docs",
    }
    assert event["properties"]["url"] == "https://ex.com/pricing"


def test_screen_name_goes_to_properties() -> None:
    event = mapped({"type": "screen", "userId": "u", "name": "Home", "properties": {"variant": "b"}})
    assert event["type"] == "screen_view"
    assert event["properties"] == {"variant": "b", "name": "Home"}


def test_identify_merges_context_traits_under_traits() -> None:
    event = mapped(
        {
            "type": "identify",
            "userId": 7,
            "traits": {"plan": "pro", "email": "a@b.c"},
            "context": {"traits": {"plan": "free", "age": 31}},
        }
    )
    assert event["type"] == "identify"
    assert event["user_id"] == "7"
    assert event["traits"] == {"plan": "pro", "email": "a@b.c", "age": 31}
    assert "traits" not in event["context"]


def test_rudderstack_identify_with_only_context_traits() -> None:
    event = mapped({"type": "identify", "userId": "u", "context": {"traits": {"plan": "team"}}})
    assert event["traits"] == {"plan": "team"}


def test_alias_sets_previous_id() -> None:
    event = mapped({"type": "alias", "userId": "new", "previousId": "old", "anonymousId": "dev"})
    assert event["type"] == "alias"
    assert event["user_id"] == "new"
    assert event["anonymous_id"] == "dev"
    assert event["properties"] == {"previous_id": "old"}


def test_group_sets_group_id_and_traits() -> None:
    event = mapped({"type": "group", "userId": "u", "groupId": 12, "traits": {"name": "Acme", "seats": 40}})
    assert event["type"] == "group"
    assert event["properties"] == {"group_id": "12", "group_traits": {"name": "Acme", "seats": 40}}


def test_context_fields_are_renamed_and_kept() -> None:
    event = mapped(
        {
            "type": "track",
            "event": "Clicked",
            "userId": "u",
            "context": {
                "ip": "203.0.113.9",
                "userAgent": "Mozilla/5.0 (iPhone)",
                "device": {
                    "type": "ios",
                    "model": "iPhone15,2",
                    "manufacturer": "Apple",
                    "advertisingId": "x",
                },
                "location": {"city": "Lyon", "country": "France", "latitude": 45.76, "longitude": "4.83"},
                "campaign": {"name": "spring", "source": "news"},
                "locale": "fr-FR",
                "timezone": "Europe/Paris",
                "library": {"name": "analytics-python", "version": "2.4.0"},
                "sessionId": 1699999,
                "traits": {"email": "x@y.z"},
                "somethingNew": {"a": 1},
            },
        }
    )
    assert event["context"] == {
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (iPhone)",
        "device": {"type": "mobile", "platform": "ios", "model": "iPhone15,2", "manufacturer": "Apple"},
        "geo": {"city": "Lyon", "country": "France", "lat": 45.76, "lon": 4.83},
        "campaign": {"name": "spring", "source": "news"},
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "library": {"name": "analytics-python", "version": "2.4.0"},
        "session_id": "1699999",
        "source": "segment",
        "segment": {"type": "track", "event": "Clicked"},
    }


def test_batch_context_is_a_default_the_message_overrides() -> None:
    event = mapped(
        {"type": "track", "event": "x", "userId": "u", "context": {"locale": "de-DE"}},
        batch_context={"locale": "en-US", "ip": "198.51.100.1"},
    )
    assert event["context"]["locale"] == "de-DE"
    assert event["context"]["ip"] == "198.51.100.1"


def test_timestamp_wins_over_original_timestamp() -> None:
    event = mapped(
        {
            "type": "track",
            "event": "x",
            "userId": "u",
            "timestamp": "2023-11-14T22:00:00Z",
            "originalTimestamp": "2020-01-01T00:00:00Z",
            "sentAt": "2020-01-01T00:00:10Z",
        }
    )
    assert event["timestamp"] == NOW - 800


def test_original_timestamp_is_corrected_for_client_clock_skew() -> None:
    # The client clock runs one hour fast: it says it sent at 23:13:20 when the server got it at 22:13:20.
    message = {
        "type": "track",
        "event": "x",
        "userId": "u",
        "originalTimestamp": "2023-11-14T23:13:00Z",
        "sentAt": "2023-11-14T23:13:20Z",
    }
    assert mapped(message)["timestamp"] == NOW - 20


def test_batch_sent_at_is_used_when_the_message_has_none() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "originalTimestamp": "2023-11-14T23:13:00Z"}
    sent_at = parse_sent_at("2023-11-14T23:13:20Z")
    assert mapped(message, sent_at=sent_at)["timestamp"] == NOW - 20
    # Without any sentAt the original time is taken as it is.
    assert mapped(message)["timestamp"] == NOW + 3600 - 20


def test_no_time_means_server_time() -> None:
    assert mapped({"type": "track", "event": "x", "userId": "u"})["timestamp"] == NOW


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "track", "event": "x"}, "userId: one of userId or anonymousId is required"),
        (
            {"type": "track", "event": "x", "userId": "", "anonymousId": "  "},
            "userId: one of userId or anonymousId",
        ),
        ({"type": "track", "userId": "u"}, "event: is required for track"),
        ({"type": "track", "event": 5, "userId": "u"}, "event: must be a string"),
        ({"type": "track", "event": "2FA", "userId": "u"}, "event: '2FA' cannot be an event type name"),
        ({"event": "x", "userId": "u"}, "type: is required"),
        ({"type": "teleport", "userId": "u"}, "type: 'teleport' is not a Segment call type"),
        ({"type": "alias", "previousId": "old", "anonymousId": "a"}, "userId: is required for alias"),
        ({"type": "alias", "userId": "new"}, "previousId: is required for alias"),
        ({"type": "group", "userId": "u"}, "groupId: is required for group"),
        ({"type": "identify", "userId": "u", "traits": ["a"]}, "traits: must be an object (got an array)"),
        (
            {"type": "track", "event": "x", "userId": True},
            "userId: must be a string or a number (got a boolean)",
        ),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "yesterday"}, "timestamp: 'yesterday'"),
        ({"type": "track", "event": "x", "userId": "u", "context": "web"}, "context: must be an object"),
        ({"type": "page", "userId": "u", "properties": {"url": 5}}, "properties.url: must be a string"),
        (
            {"type": "track", "event": "x", "userId": "u", "properties": {"product_id": {"id": 1}}},
            "properties.product_id: must be a string or a number",
        ),
    ],
)
def test_unmappable_messages_name_the_segment_field(message: dict, reason: str) -> None:
    result = map_message(message, received_at=NOW)
    assert isinstance(result, list)
    assert any(error.startswith(reason) for error in result), result


def test_single_endpoint_type_overrides_the_body_type() -> None:
    event = map_message(
        {"type": "page", "event": "Product Added", "userId": "u"}, received_at=NOW, message_type="track"
    )
    assert isinstance(event, dict)
    assert event["type"] == "add_to_cart"


def test_map_messages_keeps_good_neighbours_of_bad_messages() -> None:
    batch = map_messages(
        [
            {"type": "track", "event": "Product Viewed", "userId": "u", "properties": {"sku": "s"}},
            "not a message",
            {"type": "identify", "traits": {"a": 1}},
            {"type": "page", "anonymousId": "a"},
        ],
        received_at=NOW,
    )
    assert [e["type"] for e in batch.events] == ["view", "page_view"]
    assert batch.positions == [0, 3]
    assert batch.origins[0]["item_id"] == "properties.sku"
    assert batch.rejected == [
        (1, ["message: must be a JSON object, not a string"]),
        (2, ["userId: one of userId or anonymousId is required"]),
    ]


def test_parse_sent_at() -> None:
    assert parse_sent_at(None) is None
    assert parse_sent_at(NOW_ISO) == NOW
    with pytest.raises(ValueError, match="^sentAt: "):
        parse_sent_at("soon")


def test_segment_errors_rename_native_fields() -> None:
    errors = [
        "user_id: longer than 256 characters (300)",
        "context.user_agent: longer than 8192 characters (9000)",
        "item_id: contains control characters",
        "properties.price: must be a finite number",
        "no colon here",
    ]
    assert segment_errors(errors, {"item_id": "properties.sku"}) == [
        "userId: longer than 256 characters (300)",
        "context.userAgent: longer than 8192 characters (9000)",
        "properties.sku: contains control characters",
        "properties.price: must be a finite number",
        "no colon here",
    ]


@pytest.mark.parametrize("kind", SEGMENT_TYPES)
def test_every_mapped_message_is_a_valid_native_event(kind: str) -> None:
    message = {
        "type": kind,
        "event": "Product Added",
        "userId": "u",
        "previousId": "p",
        "groupId": "g",
        "messageId": f"m-{kind}",
        "properties": {"product_id": "i", "price": 3},
        "traits": {"plan": "pro"},
        "context": {"ip": "192.0.2.1", "page": {"url": "https://x/"}, "newThing": 1},
        "writeKey": "k",
        "_metadata": {"bundled": []},
    }
    event = mapped(message)
    EventIn.model_validate(event)  # raises on any non-native field
    normalized = EventNormalizer(IngestSettings()).normalize(event, now=NOW)
    assert not isinstance(normalized, list), normalized
    assert normalized.event_id == f"m-{kind}"
    assert normalized.context["source"] == "segment"


JSON = any_json(allow_infinity=True, text_size=8, key_size=6, width=3, max_leaves=12)
SEGMENT_KEYS = st.sampled_from(
    [
        "type",
        "event",
        "userId",
        "anonymousId",
        "messageId",
        "previousId",
        "groupId",
        "traits",
        "properties",
        "context",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "name",
        "category",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    message=st.dictionaries(SEGMENT_KEYS, JSON, max_size=8) | JSON,
    kind=st.sampled_from([*SEGMENT_TYPES, None]),
)
def test_mapping_never_raises_and_emits_only_native_fields(message: object, kind: str | None) -> None:
    result = map_message(message, received_at=NOW, message_type=kind)
    if isinstance(result, list):
        assert result and all(isinstance(reason, str) and ": " in reason for reason in result)
        return
    # The mapper checks every type it emits, so the native edge model always accepts the shape;
    # only native limits (time range, lengths) may still refuse the event.
    EventIn.model_validate(result)
    errors = EventNormalizer(IngestSettings()).normalize(result, now=NOW)
    if isinstance(errors, list):
        assert all(
            reason.split(":")[0].split(".")[0] in {"timestamp", "context", "properties", "traits"}
            for reason in errors
        ), errors
