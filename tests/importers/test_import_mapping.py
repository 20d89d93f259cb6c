"""Row mapping: native events and items from rows of each kind; column checks."""

from __future__ import annotations

import pytest

from attune.errors import BadRequest
from attune.events.normalize import EventNormalizer
from attune.importers.mapping import (
    EventDraft,
    EventsMapper,
    InteractionsMapper,
    ItemDraft,
    ItemsMapper,
    UsersMapper,
    derived_event_id,
    mapper_for,
)
from attune.settings import IngestSettings


def test_interaction_type_follows_event_type_then_value():
    mapper = InteractionsMapper()
    rated = mapper.map({"user_id": "u1", "item_id": "i1", "timestamp": "881250949", "value": "4"}, True)
    viewed = mapper.map({"user_id": "u1", "item_id": "i1", "timestamp": "881250949"}, True)
    bought = mapper.map(
        {
            "user_id": "u1",
            "item_id": "i1",
            "timestamp": "881250949",
            "event_type": "purchase",
            "value": "9.5",
        },
        True,
    )
    assert isinstance(rated, EventDraft) and isinstance(viewed, EventDraft) and isinstance(bought, EventDraft)
    assert rated.raw == {
        "type": "rating",
        "user_id": "u1",
        "item_id": "i1",
        "timestamp": "881250949",
        "value": 4.0,
    }
    assert viewed.raw["type"] == "view" and "value" not in viewed.raw
    assert bought.raw["type"] == "purchase" and bought.raw["value"] == 9.5
    assert rated.derive_id and rated.timed


def test_interaction_extra_columns_become_properties():
    draft = InteractionsMapper().map(
        {
            "user_id": "u1",
            "item_id": "i1",
            "timestamp": "2024-01-01T00:00:00Z",
            "category": "drama",
            "price": "12",
        },
        True,
    )
    assert isinstance(draft, EventDraft)
    assert draft.raw["properties"] == {"category": "drama", "price": 12}


def test_interaction_with_event_id_keeps_it():
    draft = InteractionsMapper().map(
        {"user_id": "u1", "item_id": "i1", "timestamp": "1", "event_id": "e-1"}, True
    )
    assert isinstance(draft, EventDraft)
    assert draft.raw["event_id"] == "e-1" and not draft.derive_id


def test_interaction_row_lists_every_problem():
    reasons = InteractionsMapper().map({"timestamp": "881250949", "value": "lots"}, True)
    assert reasons == ["user_id: is required", "item_id: is required", "value: 'lots' is not a number"]


def test_headerless_layouts():
    mapper = InteractionsMapper()
    assert mapper.headerless(["196", "242", "881250949"]) == ["user_id", "item_id", "timestamp"]
    assert mapper.headerless(["196", "242", "3", "881250949"]) == ["user_id", "item_id", "value", "timestamp"]
    assert mapper.headerless(["196", "242", "3", "881250949", "view"])[-1] == "event_type"
    assert mapper.headerless(["user_id", "item_id", "value", "timestamp"]) is None
    assert mapper.headerless(["196", "242"]) is None
    assert mapper.headerless(["1", "2", "3", "4", "5", "6"]) is None
    assert ItemsMapper().headerless(["1", "2", "3"]) is None


def test_users_row_is_an_identify_event_from_the_import_source():
    draft = UsersMapper().map({"user_id": "007", "age": "34", "country": "DE", "vip": "true"}, True)
    assert isinstance(draft, EventDraft)
    assert draft.raw == {
        "type": "identify",
        "user_id": "007",
        "context": {"source": "import"},
        "traits": {"age": 34, "country": "DE", "vip": True},
    }
    assert draft.derive_id and not draft.timed


def test_users_typed_row_may_nest_traits():
    draft = UsersMapper().map({"user_id": 7, "traits": {"age": 34}}, False)
    assert isinstance(draft, EventDraft)
    assert draft.raw["user_id"] == "7" and draft.raw["traits"] == {"age": 34}


def test_items_row_attributes_and_checks():
    draft = ItemsMapper().map(
        {"item_id": "i1", "title": "Heat", "genres": "Crime|Drama", "year": "1995"}, True
    )
    assert draft == ItemDraft("i1", {"title": "Heat", "genres": ["Crime", "Drama"], "year": 1995})
    nested = ItemsMapper().map({"item_id": 5, "attributes": {"title": "Up"}}, False)
    assert nested == ItemDraft("5", {"title": "Up"})
    assert ItemsMapper().map({"item_id": "i2", "available": "maybe"}, True) == [
        "available: must be true or false"
    ]
    assert ItemsMapper().map({"title": "no id"}, True) == ["item_id: is required"]
    assert ItemsMapper(max_id_length=3).map({"item_id": "abcd"}, True) == [
        "item_id: longer than 3 characters"
    ]


def test_events_csv_row_parses_json_columns_and_value():
    draft = EventsMapper().map(
        {"type": "search", "user_id": "u1", "value": "2", "properties": '{"query": "shoes"}'}, True
    )
    assert isinstance(draft, EventDraft)
    assert draft.raw == {"type": "search", "user_id": "u1", "value": 2.0, "properties": {"query": "shoes"}}
    assert (
        EventsMapper()
        .map({"type": "x", "user_id": "u1", "context": "{bad"}, True)[0]
        .startswith("context: is not valid JSON")
    )


def test_events_typed_row_passes_unknown_fields_to_the_normalizer():
    draft = EventsMapper().map({"type": "view", "user_id": 3, "colour": "red"}, False)
    assert isinstance(draft, EventDraft)
    assert draft.raw == {"type": "view", "user_id": "3", "colour": "red"}


def test_missing_required_column_names_it_and_lists_the_columns():
    with pytest.raises(BadRequest) as caught:
        InteractionsMapper().check_columns(["userId", "item_id", "timestamp"], "r.csv")
    assert "no 'user_id' column" in caught.value.message
    assert "columns found: userId, item_id, timestamp" in caught.value.message


def test_events_columns_must_be_native_and_name_a_person():
    EventsMapper().check_columns(None, "e.jsonl")  # JSON Lines: judged per line
    with pytest.raises(BadRequest, match="'colour'.*not native event fields"):
        EventsMapper().check_columns(["type", "user_id", "colour"], "e.csv")
    with pytest.raises(BadRequest, match="neither a 'user_id' nor an 'anonymous_id'"):
        EventsMapper().check_columns(["type", "item_id"], "e.csv")
    with pytest.raises(BadRequest, match="no 'type' column"):
        EventsMapper().check_columns(["user_id"], "e.csv")


def test_unknown_kind_is_refused():
    with pytest.raises(BadRequest, match="unknown import kind 'ratings'.*events, interactions, items, users"):
        mapper_for("ratings")


def test_derived_id_depends_on_content_not_spelling():
    normalizer = EventNormalizer(IngestSettings())

    def event(raw):
        result = normalizer.normalize(raw, now=2e9)
        assert not isinstance(result, list), result
        return result

    epoch = event({"type": "rating", "user_id": "u1", "item_id": "i1", "timestamp": "881250949", "value": 4})
    iso = event(
        {
            "type": "rating",
            "user_id": "u1",
            "item_id": "i1",
            "timestamp": "1997-12-04T15:55:49Z",
            "value": 4.0,
        }
    )
    other = event({"type": "rating", "user_id": "u1", "item_id": "i1", "timestamp": "881250949", "value": 5})
    assert derived_event_id(epoch, True) == derived_event_id(iso, True)
    assert derived_event_id(epoch, True) != derived_event_id(other, True)
    assert derived_event_id(epoch, True).startswith("imp-")
