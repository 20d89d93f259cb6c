"""The segment engine on a real runtime: events in, memberships out, durable and recorded.

Every test runs on SQLite and PostgreSQL (``make_runtime``), with the real features consumer,
the real rule language and the segments consumer wired as the runtime wires them.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from attune.errors import NotFound, ValidationFailed
from attune.segments.rules import RuleError
from attune.storage.tables import segment_history, segment_memberships

NOW = time.time()
HOUR = 3600.0
DAY = 86400.0


def view(user: str, ago: float, item: str = "i1", **extra) -> dict:
    return {"type": "view", "user_id": user, "item_id": item, "timestamp": NOW - ago, **extra}


def held(runtime, user: str) -> dict[str, float]:
    return {m.name: m.confidence for m in runtime.segments.segments_of(f"u:{user}")}


def feed(runtime, events: list[dict]) -> None:
    report = runtime.ingest.ingest(events)
    assert not report.rejected, report.rejected
    runtime.catch_up()


def stored(runtime) -> set[tuple[str, str]]:
    with runtime.engine.connect() as conn:
        return {
            (s, k)
            for s, k in conn.execute(select(segment_memberships.c.segment, segment_memberships.c.user_key))
        }


def test_events_change_memberships_durably_with_history(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    feed(runtime, [view("u1", HOUR), view("u2", HOUR)])
    assert held(runtime, "u1") == {} and held(runtime, "u2") == {}
    feed(runtime, [view("u1", 2 * HOUR, "i2")])
    assert held(runtime, "u1") == {"fans": 1.0}
    assert held(runtime, "u2") == {}
    assert [k for k, _ in runtime.segments.members("fans")] == ["u:u1"]
    assert stored(runtime) == {("fans", "u:u1")}
    [entry] = runtime.segments.store.changes("fans")
    assert (entry["user_key"], entry["change"], entry["reason"], entry["size"]) == (
        "u:u1",
        "enter",
        "event",
        1,
    )
    # A second runtime over the same store loads the same state.
    again = make_runtime()
    assert held(again, "u1") == {"fans": 1.0}
    assert again.segments.size("fans") == 1


def test_events_older_than_the_window_do_not_count(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    # A late arrival: sent now, but dated eight days ago: it lands outside the window.
    feed(runtime, [view("u1", HOUR), view("u1", 8 * DAY, "i2")])
    assert held(runtime, "u1") == {}


def test_exclusive_groups_keep_the_highest_priority(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions(
        {
            "premium": {"rule": "sum(purchase.value, window=30d) >= 100", "group": "tier", "priority": 10},
            "browser": {"rule": "exists(view, window=30d)", "group": "tier", "priority": 1},
            "viewer": {"rule": "exists(view, window=30d)"},
        }
    )
    feed(runtime, [view("u1", HOUR), view("u2", HOUR)])
    assert held(runtime, "u1") == {"browser": 1.0, "viewer": 1.0}
    feed(
        runtime, [{"type": "purchase", "user_id": "u1", "item_id": "i9", "value": 150, "timestamp": NOW - 60}]
    )
    assert held(runtime, "u1") == {"premium": 1.0, "viewer": 1.0}
    assert held(runtime, "u2") == {"browser": 1.0, "viewer": 1.0}
    kinds = [(c["segment"], c["change"]) for c in reversed(runtime.segments.store.changes("browser"))]
    assert kinds == [("browser", "enter"), ("browser", "enter"), ("browser", "exit")]


def test_traits_and_segment_references(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions(
        {
            "young": {"rule": "trait.age between 18 and 24"},
            "young_eu_viewers": {
                "rule": 'segment("young") and trait.country in ("DE", "FR") and exists(view, window=7d)'
            },
        }
    )
    feed(
        runtime,
        [
            {"type": "identify", "user_id": "u1", "traits": {"age": 20, "country": "DE"}},
            {"type": "identify", "user_id": "u2", "traits": {"age": 20, "country": "US"}},
            {"type": "identify", "user_id": "u3", "traits": {"age": 40, "country": "FR"}},
            view("u1", HOUR),
            view("u2", HOUR),
            view("u3", HOUR),
        ],
    )
    assert held(runtime, "u1") == {"young": 1.0, "young_eu_viewers": 1.0}
    assert held(runtime, "u2") == {"young": 1.0}
    assert held(runtime, "u3") == {}
    # Traits change through the log too: u1 turns 25.
    feed(runtime, [{"type": "identify", "user_id": "u1", "traits": {"age": 25}}])
    assert held(runtime, "u1") == {}


def test_marketing_segments_need_consent(make_runtime) -> None:
    runtime = make_runtime()
    refused = {"u:u2"}
    runtime.segments.allows = lambda key, purpose: not (purpose == "marketing" and key in refused)
    runtime.segments.apply_definitions(
        {
            "promo": {"rule": "exists(view, window=7d)", "purpose": "marketing"},
            "seen": {"rule": "exists(view, window=7d)"},
        }
    )
    feed(runtime, [view("u1", HOUR), view("u2", HOUR)])
    assert held(runtime, "u1") == {"promo": 1.0, "seen": 1.0}
    assert held(runtime, "u2") == {"seen": 1.0}


def test_consent_service_gates_marketing_segments_online_and_in_bulk(make_runtime) -> None:
    from attune.segments.engine import consent_hooks

    runtime = make_runtime()
    consent = runtime.privacy.consent
    consent.set("u1", {"marketing": "granted"}, "test")
    consent.set("u2", {"marketing": "denied"}, "test")  # u3 decided nothing: marketing is opt-in
    runtime.segments.allows, runtime.segments.allows_many = consent_hooks(consent, chunk=2)
    runtime.segments.apply_definitions({"promo": {"rule": "exists(view, window=7d)", "purpose": "marketing"}})
    feed(runtime, [view("u1", HOUR), view("u2", HOUR), view("u3", HOUR)])
    assert [k for k, _ in runtime.segments.members("promo")] == ["u:u1"]
    runtime.segments.reset()
    assert runtime.segments.evaluate_all()["entered"] == 1
    assert [k for k, _ in runtime.segments.members("promo")] == ["u:u1"]


def test_identity_merge_moves_membership_to_the_user(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    feed(
        runtime,
        [
            {"type": "view", "anonymous_id": "d1", "item_id": "i1", "timestamp": NOW - HOUR},
            {"type": "view", "anonymous_id": "d1", "item_id": "i2", "timestamp": NOW - HOUR},
        ],
    )
    assert {m.name for m in runtime.segments.segments_of("a:d1")} == {"fans"}
    feed(runtime, [{"type": "identify", "user_id": "u9", "anonymous_id": "d1", "traits": {}}])
    assert runtime.segments.segments_of("a:d1") == []
    assert held(runtime, "u9") == {"fans": 1.0}
    assert stored(runtime) == {("fans", "u:u9")}


def test_definition_changes_reevaluate_and_delete_records_exits(make_runtime) -> None:
    runtime = make_runtime()
    feed(runtime, [view("u1", HOUR), view("u2", HOUR), view("u2", HOUR, "i2")])
    versions = runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    assert versions == {"fans": 1}
    assert [k for k, _ in runtime.segments.members("fans")] == ["u:u2"]
    versions = runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 1"}})
    assert versions == {"fans": 2}
    assert sorted(k for k, _ in runtime.segments.members("fans")) == ["u:u1", "u:u2"]
    assert runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 1"}}) == {
        "fans": 2
    }
    runtime.segments.delete_definition("fans")
    assert held(runtime, "u2") == {}
    assert stored(runtime) == set()
    with runtime.engine.connect() as conn:
        exits = conn.execute(
            select(segment_history.c.user_key).where(segment_history.c.change == "exit")
        ).scalars()
        assert sorted(exits) == ["u:u1", "u:u2"]
    with pytest.raises(NotFound):
        runtime.segments.members("fans")


def test_bad_definitions_are_refused_and_nothing_changes(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"a": {"rule": "exists(view, window=1d)"}})
    with pytest.raises(RuleError) as unknown:
        runtime.segments.apply_definitions({"b": {"rule": "engagment_score >= 0.5"}})
    assert unknown.value.position == 0 and "engagement_score" in str(unknown.value)
    with pytest.raises(RuleError, match="->"):
        runtime.segments.apply_definitions({"a": {"rule": 'segment("b")'}, "b": {"rule": 'segment("a")'}})
    with pytest.raises(RuleError):
        runtime.segments.apply_definitions({"c": {"rule": "count(view, window=0d) > 1"}})
    runtime.segments.apply_definitions({"b": {"rule": 'segment("a")'}})
    with pytest.raises(ValidationFailed, match="used by b"):
        runtime.segments.delete_definition("a")
    assert sorted(runtime.segments.definitions()) == ["a", "b"]
    assert runtime.segments.stored("a").version == 1


def test_reset_and_replay_rebuild_the_same_memberships(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    feed(runtime, [view("u1", HOUR), view("u1", HOUR, "i2"), view("u2", HOUR)])
    before = {k: held(runtime, k) for k in ("u1", "u2")}
    runtime.pipeline.replay()
    assert {k: held(runtime, k) for k in ("u1", "u2")} == before == {"u1": {"fans": 1.0}, "u2": {}}
    assert stored(runtime) == {("fans", "u:u1")}


def test_lapse_removes_membership_on_time_without_an_event(make_runtime, clock) -> None:
    runtime = make_runtime()
    engine = runtime.segments
    engine.apply_definitions({"active": {"rule": "exists(view, window=1h)"}})
    feed(runtime, [view("u1", 600)])  # ten minutes ago: lapses in 50 minutes
    assert held(runtime, "u1") == {"active": 1.0}
    assert engine.scheduler.next_at() == pytest.approx(NOW - 600 + HOUR)
    clock.now = time.time()
    engine.clock = engine.scheduler.clock = clock
    clock.listeners.append(engine.scheduler.wake)
    engine.scheduler.start()
    try:
        clock.advance(NOW - 600 + HOUR - clock.now - 5)  # five seconds early: still a member
        time.sleep(0.2)
        assert held(runtime, "u1") == {"active": 1.0}
        clock.advance(5.01)
        deadline = time.monotonic() + 10
        while held(runtime, "u1") and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        engine.scheduler.stop()
    assert held(runtime, "u1") == {}
    assert stored(runtime) == set()
    [exit_, _] = engine.store.changes("active")
    assert (exit_["change"], exit_["reason"]) == ("exit", "lapse")
    assert exit_["at"] == pytest.approx(NOW - 600 + HOUR, abs=1.0)


def test_lapse_can_also_bring_people_in(make_runtime, clock) -> None:
    runtime = make_runtime()
    engine = runtime.segments
    engine.apply_definitions(
        {"lapsed": {"rule": "exists(view, window=30d) and not exists(purchase, window=1d)"}}
    )
    feed(
        runtime,
        [
            view("u1", 2 * HOUR),
            {"type": "purchase", "user_id": "u1", "item_id": "i1", "timestamp": NOW - HOUR},
        ],
    )
    assert held(runtime, "u1") == {}
    clock.now = NOW - HOUR + DAY + 1  # the purchase has left its one-day window
    engine.clock = engine.scheduler.clock = clock
    assert engine.scheduler.run_due() == 1
    assert held(runtime, "u1") == {"lapsed": 1.0}
    assert stored(runtime) == {("lapsed", "u:u1")}


def test_recency_thresholds_are_scheduled(make_runtime, clock) -> None:
    runtime = make_runtime()
    engine = runtime.segments
    engine.apply_definitions({"dormant": {"rule": "recency_days > 3"}})
    feed(runtime, [view("u1", DAY)])
    assert held(runtime, "u1") == {}
    assert engine.scheduler.next_at() == pytest.approx(NOW - DAY + 3 * DAY, abs=1.0)
    clock.now = engine.scheduler.next_at()
    engine.clock = engine.scheduler.clock = clock
    engine.scheduler.run_due()
    assert held(runtime, "u1") == {"dormant": 1.0}


def test_learnt_segments_carry_their_confidence_and_obey_groups(make_runtime) -> None:
    runtime = make_runtime()
    engine = runtime.segments
    engine.apply_definitions(
        {"buyers": {"rule": "exists(purchase, window=30d)", "group": "g", "priority": 5}}
    )
    feed(
        runtime,
        [
            view("u1", HOUR),
            view("u2", HOUR),
            {"type": "purchase", "user_id": "u2", "item_id": "i", "timestamp": NOW - 60},
        ],
    )
    engine.set_learnt(
        {"cluster_0": {"group": "g", "priority": 1, "description": "heavy viewers"}},
        {"cluster_0": {"u:u1": 0.8, "u:u2": 0.6}},
    )
    assert held(runtime, "u1") == {"cluster_0": 0.8}
    assert held(runtime, "u2") == {"buyers": 1.0}
    assert engine.definitions()["cluster_0"].kind == "learnt"
    again = make_runtime()
    assert held(again, "u1") == {"cluster_0": 0.8}
    engine.set_learnt({}, {})
    assert held(runtime, "u1") == {}


def test_erase_removes_person_and_their_history(make_runtime) -> None:
    runtime = make_runtime()
    runtime.segments.apply_definitions({"seen": {"rule": "exists(view, window=7d)"}})
    feed(runtime, [view("u1", HOUR), view("u2", HOUR)])
    runtime.segments.erase("u:u1")
    assert held(runtime, "u1") == {}
    with runtime.engine.connect() as conn:
        keys = set(conn.execute(select(segment_history.c.user_key)).scalars())
    assert keys == {"u:u2"}


def test_a_process_without_consumers_follows_the_changes_of_another(make_runtime) -> None:
    writer = make_runtime(segments={"bulk_threshold": 0})
    writer.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 2"}})
    reader = make_runtime()  # e.g. the API process beside a worker: its consumers do not run
    assert reader.segments.refresh() == 0  # nothing changed since it loaded
    feed(writer, [view("u1", HOUR), view("u1", 2 * HOUR, "i2"), view("u2", HOUR)])
    assert held(reader, "u1") == {}
    assert reader.segments.refresh() == 1  # one history row: u1 entered
    assert held(reader, "u1") == {"fans": 1.0} and held(reader, "u2") == {}
    assert reader.segments.segments_of("u:u1") == writer.segments.segments_of("u:u1")
    # A definition change (and the re-evaluation it causes) reloads everything.
    writer.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 1"}})
    assert reader.segments.refresh() == -1
    assert set(reader.segments.definitions()["fans"].rule.text.split()) >= {">=", "1"}
    assert held(reader, "u2") == {"fans": 1.0}
    # A bulk re-evaluation written as a snapshot is picked up too.
    writer.segments.reset()
    assert reader.segments.refresh() == -1 and held(reader, "u1") == {}
    writer.segments.evaluate_all()
    assert reader.segments.refresh() == -1
    assert {k for k, _ in reader.segments.members("fans")} == {"u:u1", "u:u2"}
    # So does deleting a segment.
    writer.segments.delete_definition("fans")
    reader.segments.refresh()
    assert held(reader, "u1") == {} and "fans" not in reader.segments.definitions()
