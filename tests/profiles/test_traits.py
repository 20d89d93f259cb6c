"""The trait conflict rule: newest wins, a higher source priority wins regardless of time."""

from __future__ import annotations

from attune.profiles.traits import apply_traits, incoming_wins, merge_records, plain

PRIORITY = {"crm": 10, "web": 0}


def record(value, ts: float, source: str = "web") -> dict:
    return {"value": value, "ts": ts, "source": source}


def test_newest_wins_between_equal_sources() -> None:
    traits = {"city": record("Rome", 10.0)}
    apply_traits(traits, {"city": "Oslo"}, 20.0, "web", {})
    assert traits["city"] == record("Oslo", 20.0)
    apply_traits(traits, {"city": "Paris"}, 15.0, "web", {})  # older: ignored
    assert traits["city"]["value"] == "Oslo"


def test_equal_timestamps_let_the_later_write_win() -> None:
    assert incoming_wins(record("a", 10.0), 10.0, "web", {}) is True


def test_unknown_sources_rank_zero() -> None:
    assert incoming_wins(record("a", 10.0, "app"), 20.0, "import", PRIORITY) is True
    assert incoming_wins(record("a", 10.0, "app"), 20.0, "crm", PRIORITY) is True


def test_source_priority_overrides_time() -> None:
    traits = {"tier": record("gold", 10.0, "crm")}
    apply_traits(traits, {"tier": "basic", "city": "Oslo"}, 99.0, "web", PRIORITY)
    assert plain(traits) == {"tier": "gold", "city": "Oslo"}
    apply_traits(traits, {"city": "Rome"}, 1.0, "crm", PRIORITY)  # older, but from the stronger source
    assert plain(traits) == {"tier": "gold", "city": "Rome"}


def test_merge_uses_the_same_rule() -> None:
    user = {"tier": record("gold", 10.0, "crm"), "city": record("Oslo", 10.0), "lang": record("no", 30.0)}
    device = {
        "tier": record("basic", 50.0),
        "city": record("Rome", 20.0),
        "lang": record("it", 5.0),
        "os": record("iOS", 1.0),
    }
    merge_records(user, device, PRIORITY)
    assert plain(user) == {"tier": "gold", "city": "Rome", "lang": "no", "os": "iOS"}
    assert user["city"] == record("Rome", 20.0)  # metadata travels with the value


def test_null_values_are_values() -> None:
    traits = {"phone": record("123", 1.0)}
    apply_traits(traits, {"phone": None}, 2.0, "web", {})
    assert plain(traits) == {"phone": None}
