"""Identity stitching, merges and traits in the profiles consumer (on every backend)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from attune.errors import NotFound
from attune.events.model import Event
from attune.runtime import Runtime
from attune.storage.tables import profiles

T0 = 1_790_000_000.0


def ev(n: int, type_: str = "view", **fields) -> dict:
    """Native event ``n`` at ``T0 + n`` seconds."""
    return {"event_id": f"e{n}", "type": type_, "timestamp": T0 + n, **fields}


def feed(runtime: Runtime, *batches: list[dict]) -> None:
    for batch in batches:
        report = runtime.ingest.ingest(batch)
        assert not report.rejected, report.rejected
    runtime.catch_up()


def profile_rows(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(profiles)).scalar()


def items_of(profile) -> set[str]:
    return {i["item_id"] for i in profile.recent_interactions}


@pytest.mark.parametrize("one_batch", [True, False], ids=["one-batch", "separate-batches"])
def test_anonymous_history_merges_into_the_user_on_identify(runtime: Runtime, one_batch: bool) -> None:
    events = [
        ev(1, anonymous_id="d1", item_id="i1"),
        ev(2, anonymous_id="d1", item_id="i2", type_="add_to_cart"),
        ev(3, "identify", anonymous_id="d1", user_id="u1"),
    ]
    feed(runtime, *([events] if one_batch else [[e] for e in events]))
    profile = runtime.profiles.get("u1")
    assert profile.anonymous_ids == ["d1"]
    assert profile.event_counts == {"view": 1, "add_to_cart": 1, "identify": 1}
    assert items_of(profile) == {"i1", "i2"}
    assert profile.first_seen == T0 + 1 and profile.last_seen == T0 + 3
    assert profile_rows(runtime) == 1  # the anonymous profile was folded in, not kept beside
    assert runtime.profiles.get("d1").user_id == "u1"  # the device id resolves to the person


def test_later_anonymous_events_from_the_device_land_on_the_user(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, "identify", anonymous_id="d1", user_id="u1")],
        [ev(2, anonymous_id="d1", item_id="i9")],
    )
    profile = runtime.profiles.get("u1")
    assert items_of(profile) == {"i9"}
    assert profile.event_counts == {"identify": 1, "view": 1}
    assert runtime.profiles.seen_items(runtime.profiles.canonical_key("u1")) == {"i9"}
    assert profile_rows(runtime) == 1


def test_any_event_with_both_ids_stitches(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, anonymous_id="d1", item_id="i1")],
        [ev(2, "purchase", anonymous_id="d1", user_id="u1", item_id="i2")],
    )
    assert items_of(runtime.profiles.get("u1")) == {"i1", "i2"}


def test_alias_merges_two_user_ids(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, user_id="old", anonymous_id="d1", item_id="i1"), ev(2, user_id="new", item_id="i2")],
        [ev(3, "alias", user_id="new", properties={"previous_id": "old"})],
        [ev(4, anonymous_id="d1", item_id="i3")],  # the old user's device follows the merge
    )
    merged = runtime.profiles.get("new")
    assert merged.merged_user_ids == ["old"]
    assert merged.anonymous_ids == ["d1"]
    assert items_of(merged) == {"i1", "i2", "i3"}
    assert merged.event_counts == {"view": 3, "alias": 1}
    assert runtime.profiles.get("old").user_id == "new"
    assert profile_rows(runtime) == 1


def test_alias_in_the_same_batch_as_history(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            ev(1, user_id="old", item_id="i1"),
            ev(2, "alias", user_id="new", properties={"previous_id": "old"}),
            ev(3, user_id="old", item_id="i2"),  # the old id now resolves to the merged person
        ],
    )
    assert items_of(runtime.profiles.get("new")) == {"i1", "i2"}
    assert profile_rows(runtime) == 1


def test_alias_without_previous_id_changes_nothing(runtime: Runtime) -> None:
    feed(runtime, [ev(1, user_id="a"), ev(2, "alias", user_id="b")])
    assert runtime.profiles.get("a").user_id == "a"
    assert runtime.profiles.get("b").merged_user_ids == []


def test_a_poison_alias_in_the_log_does_not_stall_the_consumer(runtime: Runtime) -> None:
    # Ingest refuses such ids now; an event logged before (or by another writer) must not block.
    poison = Event(
        event_id="p",
        type="alias",
        timestamp=T0,
        received_at=T0,
        user_id="b",
        properties={"previous_id": "a\x00"},
    )
    runtime.log.append([poison])
    feed(runtime, [ev(2, user_id="b", item_id="i1")])
    assert items_of(runtime.profiles.get("b")) == {"i1"}
    assert runtime.profiles.get("b").merged_user_ids == []


def test_alias_cycles_are_harmless(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, user_id="a", item_id="i1"), ev(2, user_id="b", item_id="i2")],
        [ev(3, "alias", user_id="b", properties={"previous_id": "a"})],
        [ev(4, "alias", user_id="a", properties={"previous_id": "b"})],
    )
    assert runtime.profiles.get("a").user_id == runtime.profiles.get("b").user_id == "b"
    assert items_of(runtime.profiles.get("a")) == {"i1", "i2"}


def test_first_linked_user_keeps_a_shared_device(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, anonymous_id="kiosk", item_id="i1")],
        [ev(2, "identify", anonymous_id="kiosk", user_id="alice")],
        [
            ev(3, "identify", anonymous_id="kiosk", user_id="bob"),
            ev(4, user_id="bob", anonymous_id="kiosk", item_id="i2"),
        ],
        [ev(5, anonymous_id="kiosk", item_id="i3")],
    )
    alice, bob = runtime.profiles.get("alice"), runtime.profiles.get("bob")
    assert alice.anonymous_ids == ["kiosk"] and bob.anonymous_ids == []
    assert items_of(alice) == {"i1", "i3"}
    assert items_of(bob) == {"i2"}  # bob's own events stay his; the device's history does not move


def test_anonymous_people_have_their_own_profiles(runtime: Runtime) -> None:
    feed(runtime, [ev(1, anonymous_id="d1", item_id="i1"), ev(2, anonymous_id="d2", item_id="i2")])
    assert items_of(runtime.profiles.get("d1")) == {"i1"}
    assert profile_rows(runtime) == 2


def test_unknown_person_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="nobody"):
        runtime.profiles.get("nobody")


def test_traits_newest_wins_regardless_of_arrival_order(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(10, "identify", user_id="u1", traits={"city": "Oslo", "age": 30})],
        [ev(5, "identify", user_id="u1", traits={"city": "Rome", "lang": "it"})],  # older: only fills gaps
        [ev(20, "identify", user_id="u1", traits={"age": 31})],
    )
    profile = runtime.profiles.get("u1")
    assert profile.traits == {"city": "Oslo", "age": 31, "lang": "it"}
    assert profile.trait_sources["age"]["updated_at"].startswith("2026-")


def test_source_priority_beats_newer_values(make_runtime) -> None:
    runtime = make_runtime(profiles={"source_priority": {"crm": 10}})
    feed(
        runtime,
        [ev(1, "identify", user_id="u1", traits={"tier": "gold"}, context={"source": "crm"})],
        [ev(50, "identify", user_id="u1", traits={"tier": "basic", "city": "Oslo"})],
    )
    profile = runtime.profiles.get("u1")
    assert profile.traits == {"tier": "gold", "city": "Oslo"}
    assert profile.trait_sources["tier"]["source"] == "crm"
    assert profile.trait_sources["city"]["source"] == "web"


def test_merge_applies_the_trait_rule(make_runtime) -> None:
    runtime = make_runtime(profiles={"source_priority": {"crm": 10}})
    feed(
        runtime,
        [
            ev(
                1,
                "identify",
                user_id="u1",
                traits={"tier": "gold", "color": "blue"},
                context={"source": "crm"},
            ),
            ev(2, "identify", user_id="u1", traits={"shoe": 42}),
            # The anonymous visitor's traits are newer: they win where the rule lets them.
            ev(9, "identify", anonymous_id="d1", traits={"tier": "basic", "shoe": 43, "new": True}),
        ],
        [ev(10, "identify", user_id="u1", anonymous_id="d1")],
    )
    assert runtime.profiles.get("u1").traits == {"tier": "gold", "color": "blue", "shoe": 43, "new": True}


def test_replay_rebuilds_the_same_profiles(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            ev(1, anonymous_id="d1", item_id="i1"),
            ev(2, "identify", anonymous_id="d1", user_id="u1", traits={"a": 1}),
        ],
        [ev(3, user_id="u2", item_id="i2"), ev(4, "alias", user_id="u2", properties={"previous_id": "u1"})],
    )
    before = runtime.profiles.get("u2").to_dict()
    runtime.pipeline.replay()
    assert runtime.profiles.get("u2").to_dict() == before


def test_alias_with_an_anonymous_previous_id_merges_the_device(runtime: Runtime) -> None:
    """Segment's alias(previousId=<anonymousId>, userId) moves the device's history to the user."""
    feed(
        runtime,
        [
            ev(1, "view", anonymous_id="dev-1", item_id="i1"),
            ev(2, "alias", user_id="carol", properties={"previous_id": "dev-1"}),
            ev(3, "view", anonymous_id="dev-1", item_id="i2"),
        ],
    )
    profile = runtime.profiles.get("carol")
    assert profile.anonymous_ids == ["dev-1"]
    assert {i["item_id"] for i in profile.recent_interactions} == {"i1", "i2"}


def test_alias_of_a_device_linked_to_someone_else_does_not_merge_people(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            ev(1, "identify", user_id="alice", anonymous_id="shared", traits={"name": "A"}),
            ev(2, "alias", user_id="bob", properties={"previous_id": "shared"}),
        ],
    )
    assert runtime.profiles.get("alice").traits == {"name": "A"}
    assert runtime.profiles.get("bob").traits == {}
