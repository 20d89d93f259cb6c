"""The normalizer: every refusal names the field and the reason; good events come out clean."""

from __future__ import annotations

import decimal
import math

import pytest

from attune.events.model import Event
from attune.events.normalize import EventNormalizer
from attune.settings import IngestSettings

NOW = 1795348800.0  # 2026-11-22T12:00:00Z


@pytest.fixture
def normalizer() -> EventNormalizer:
    return EventNormalizer(IngestSettings())


def ok(normalizer: EventNormalizer, raw: dict, **kwargs) -> Event:
    result = normalizer.normalize(raw, now=NOW, **kwargs)
    assert isinstance(result, Event), result
    return result


def refused(normalizer: EventNormalizer, raw: object) -> list[str]:
    result = normalizer.normalize(raw, now=NOW)
    assert isinstance(result, list), f"expected a refusal, got {result!r}"
    assert result, "a refusal carries at least one reason"
    return result


def test_minimal_event_gets_defaults(normalizer: EventNormalizer) -> None:
    event = ok(normalizer, {"type": "View", "anonymous_id": "d1"})
    assert event.type == "view"
    assert event.anonymous_id == "d1" and event.user_id is None
    assert event.timestamp == NOW and event.received_at == NOW
    assert len(event.event_id) == 32  # generated when absent


def test_full_event_is_kept(normalizer: EventNormalizer) -> None:
    event = ok(
        normalizer,
        {
            "event_id": " e-1 ",
            "type": "Product Added",
            "user_id": 42,
            "anonymous_id": "d1",
            "item_id": 7,
            "value": 4,
            "timestamp": "2026-11-22T12:00:00+01:00",
            "context": {
                "ip": "10.0.0.1",
                "page": {"url": " https://x.test/a "},
                "session_id": " s-9 ",
                "extra": 1,
            },
            "properties": {"colour": " red ", "sizes": [" s ", "m"]},
        },
    )
    assert (event.event_id, event.type, event.user_id, event.item_id) == ("e-1", "add_to_cart", "42", "7")
    assert event.value == 4.0 and isinstance(event.value, float)
    assert event.timestamp == NOW - 3600
    assert event.session_id == "s-9" and "session_id" not in event.context
    assert event.context["page"]["url"] == "https://x.test/a"
    assert event.properties == {"colour": "red", "sizes": ["s", "m"]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "event: must be a JSON object, not an array"),
        ("x", "event: must be a JSON object, not a string"),
        (None, "event: must be a JSON object, not null"),
        (3, "event: must be a JSON object, not a number"),
        ({"user_id": "u"}, "type: is required"),
        ({"type": "view"}, "user_id: one of user_id or anonymous_id is required"),
        ({"type": 5, "user_id": "u"}, "type: input should be a valid string (got int)"),
        ({"type": "view", "user_id": True}, "user_id: must be a string or an integer (got bool)"),
        ({"type": "view", "anonymous_id": 1.5}, "anonymous_id: must be a string or an integer (got float)"),
        (
            {"type": "view", "user_id": "u", "item_id": []},
            "item_id: must be a string or an integer (got list)",
        ),
        ({"type": "view", "user_id": "u", "value": "5"}, "value: must be a number (got str)"),
        (
            {"type": "view", "user_id": "u", "timestamp": [1]},
            "timestamp: must be a string or a number (got list)",
        ),
        ({"type": "view", "user_id": "u", "colour": "red"}, "colour: unknown field"),
        ({"type": "view", "user_id": "u", "context": 5}, "context: input should be a valid dictionary"),
        (
            {"type": "view", "user_id": "u", "context": {"page": {"url": 5}}},
            "context.page.url: input should be",
        ),
        (
            {"type": "view", "user_id": "u", "properties": []},
            "properties: input should be a valid dictionary",
        ),
        ({"type": "1abc", "user_id": "u"}, "type: '1abc' is not a valid event type name"),
        ({"type": "view", "user_id": ""}, "user_id: must not be empty"),
        ({"type": "view", "user_id": "   "}, "user_id: must not be empty"),
        ({"type": "view", "user_id": "u", "event_id": ""}, "event_id: must not be empty"),
        ({"type": "view", "user_id": "x" * 257}, "user_id: longer than 256 characters (257)"),
        ({"type": "view", "user_id": "u", "item_id": "i" * 300}, "item_id: longer than 256 characters (300)"),
        ({"type": "view", "user_id": "u", "event_id": "e" * 257}, "event_id: longer than 256 characters"),
        ({"type": "view", "user_id": "a\nb"}, "user_id: contains control characters"),
        ({"type": "view", "anonymous_id": "a\x00b"}, "anonymous_id: contains control characters"),
        ({"type": "view", "user_id": "u", "item_id": "i\x7f"}, "item_id: contains control characters"),
        ({"type": "view", "user_id": "u", "properties": {"s": "x" * 8193}}, "properties.s: longer than 8192"),
        (
            {"type": "view", "user_id": "u", "context": {"ua": ["y" * 9000]}},
            "context.ua[0]: longer than 8192",
        ),
        ({"type": "view", "user_id": "u", "timestamp": "soon"}, "timestamp: 'soon' is neither ISO 8601"),
        (
            {"type": "view", "user_id": "u", "properties": {f"k{i}": "v" * 8000 for i in range(5)}},
            "properties: larger than 32768 bytes when serialized",
        ),
    ],
)
def test_refusals_name_the_field(normalizer: EventNormalizer, raw: object, expected: str) -> None:
    errors = refused(normalizer, raw)
    assert any(e.startswith(expected) for e in errors), errors


def test_every_fault_is_reported_at_once(normalizer: EventNormalizer) -> None:
    errors = refused(normalizer, {"type": "1x", "user_id": "a\tb", "item_id": "", "value": math.nan})
    fields = sorted(e.split(":", 1)[0] for e in errors)
    assert fields == ["item_id", "type", "user_id", "value"]


@pytest.mark.parametrize("user_id", ["Zoë", "用户-42", "😀🎉", "مستخدم", "a b"])
def test_unicode_and_emoji_ids_are_accepted(normalizer: EventNormalizer, user_id: str) -> None:
    assert ok(normalizer, {"type": "view", "user_id": user_id, "item_id": "🍕"}).user_id == user_id


def test_integer_ids_become_strings(normalizer: EventNormalizer) -> None:
    event = ok(normalizer, {"type": "view", "user_id": 0, "anonymous_id": -7})
    assert (event.user_id, event.anonymous_id) == ("0", "-7")


def test_id_at_the_length_limit_is_accepted(normalizer: EventNormalizer) -> None:
    assert ok(normalizer, {"type": "view", "user_id": "x" * 256}).user_id == "x" * 256


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"value": math.nan}, "value"),
        ({"value": math.inf}, "value"),
        ({"value": -math.inf}, "value"),
        ({"timestamp": math.nan}, "timestamp"),
        ({"properties": {"price": math.inf}}, "properties.price"),
        ({"properties": {"list": [1.0, math.nan]}}, "properties.list[1]"),
        ({"context": {"geo": {"lat": math.nan}}}, "context.geo.lat"),
        ({"traits": {"score": -math.inf}}, "traits.score"),
    ],
)
def test_non_finite_floats_from_python_are_refused(
    normalizer: EventNormalizer, raw: dict, field: str
) -> None:
    # JSON cannot carry NaN or infinity, but importers hand over Python dicts that can.
    errors = refused(normalizer, {"type": "view", "user_id": "u", **raw})
    assert any(e.startswith(f"{field}: ") and "finite" in e for e in errors), errors


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"properties": {"n": 2**70}}, "properties.n: integer outside the 64-bit range"),
        ({"traits": {"tags": {"a", "b"}}}, "traits.tags: must be a JSON value"),
        ({"context": {"amount": decimal.Decimal("1.5")}}, "context.amount: must be a JSON value"),
        ({"properties": {"rows": [{1: "x"}]}}, "properties.rows[0]: keys must be strings"),
    ],
)
def test_python_values_json_cannot_hold_are_refused(
    normalizer: EventNormalizer, raw: dict, expected: str
) -> None:
    errors = refused(normalizer, {"type": "view", "user_id": "u", **raw})
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize(
    ("previous_id", "expected"),
    [
        ("a\x00b", "properties.previous_id: contains control characters"),
        ("  ", "properties.previous_id: must not be empty"),
        ("p" * 300, "properties.previous_id: longer than 256 characters (300)"),
        ({"id": 1}, "properties.previous_id: must be a string or an integer (got dict)"),
        (True, "properties.previous_id: must be a string or an integer (got bool)"),
    ],
)
def test_alias_previous_id_follows_the_id_rules(
    normalizer: EventNormalizer, previous_id: object, expected: str
) -> None:
    raw = {"type": "alias", "user_id": "new", "properties": {"previous_id": previous_id}}
    assert refused(normalizer, raw) == [expected]


def test_alias_previous_id_may_be_a_number(normalizer: EventNormalizer) -> None:
    event = ok(normalizer, {"type": "alias", "user_id": "new", "properties": {"previous_id": 41}})
    assert event.properties == {"previous_id": 41}
    # Only alias events give previous_id a meaning.
    assert ok(normalizer, {"type": "view", "user_id": "u", "properties": {"previous_id": {"x": 1}}})


def test_ancient_timestamps_are_refused(normalizer: EventNormalizer) -> None:
    errors = refused(normalizer, {"type": "view", "user_id": "u", "timestamp": "1989-12-31T23:59:59Z"})
    assert errors == [
        "timestamp: 1989-12-31T23:59:59Z is before the earliest accepted time 1990-01-01T00:00:00Z"
    ]
    assert refused(normalizer, {"type": "view", "user_id": "u", "timestamp": -1e300})[0].startswith(
        "timestamp: "
    )


def test_far_future_timestamps_are_refused(normalizer: EventNormalizer) -> None:
    errors = refused(normalizer, {"type": "view", "user_id": "u", "timestamp": "4000-01-01T00:00:00Z"})
    assert errors == ["timestamp: 4000-01-01T00:00:00Z is more than 86400 s in the future"]
    huge = refused(normalizer, {"type": "view", "user_id": "u", "timestamp": 1e300})[0]
    assert huge.startswith("timestamp: ") and len(huge) < 120  # no 300-digit number in the message


def test_clock_skew_within_a_day_is_allowed(normalizer: EventNormalizer) -> None:
    assert ok(normalizer, {"type": "view", "user_id": "u", "timestamp": NOW + 3600}).timestamp == NOW + 3600


def test_epoch_milliseconds_are_understood(normalizer: EventNormalizer) -> None:
    assert ok(normalizer, {"type": "view", "user_id": "u", "timestamp": int(NOW * 1000)}).timestamp == NOW


def nested(depth: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


def test_nesting_depth_is_limited(normalizer: EventNormalizer) -> None:
    assert ok(normalizer, {"type": "view", "user_id": "u", "properties": nested(9)})
    errors = refused(normalizer, {"type": "view", "user_id": "u", "properties": nested(12)})
    assert (
        len(errors) == 1
        and errors[0].startswith("properties.n.n")
        and "nested more than 10 levels" in errors[0]
    )


def test_default_source_fills_context_unless_given(normalizer: EventNormalizer) -> None:
    assert (
        ok(normalizer, {"type": "view", "user_id": "u"}, default_source="pixel").context["source"] == "pixel"
    )
    given = {"type": "view", "user_id": "u", "context": {"source": "crm"}}
    assert ok(normalizer, given, default_source="pixel").context["source"] == "crm"


def test_limits_come_from_settings() -> None:
    strict = EventNormalizer(IngestSettings(max_id_length=4, max_string_length=3))
    assert strict.normalize({"type": "view", "user_id": "abcde"}, now=NOW) == [
        "user_id: longer than 4 characters (5)"
    ]
    assert strict.normalize({"type": "view", "user_id": "u", "properties": {"p": "abcd"}}, now=NOW) == [
        "properties.p: longer than 3 characters (4)"
    ]
