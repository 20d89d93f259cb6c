"""The features consumer: canonical keys after stitching, listeners, crash-safe state (every backend)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from attune.consumers.features import FeaturesWaiting
from attune.features.refs import FeatureRef
from attune.runtime import Runtime
from attune.storage.tables import feature_state

NOW = time.time()
VIEWS_7D = FeatureRef("count", "view", window_seconds=7 * 86400)
ITEMS_ALL = FeatureRef("distinct", "view")
SPEND = FeatureRef("sum", "purchase", field="value", window_seconds=30 * 86400)
DEVICE = FeatureRef("context", name="device")
REFS = [VIEWS_7D, ITEMS_ALL, SPEND, DEVICE, FeatureRef("feature", name="engagement_score")]


def ev(n: int, type_: str = "view", age: float = 0.0, **fields) -> dict:
    return {"event_id": f"e{n}", "type": type_, "timestamp": NOW - 3600 - age + n, **fields}


def feed(runtime: Runtime, *batches: list[dict]) -> None:
    for batch in batches:
        report = runtime.ingest.ingest(batch)
        assert not report.rejected, report.rejected
        runtime.catch_up()


def consumer(runtime: Runtime):
    return runtime.pipeline.runner("features").consumer


def stored_rows(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(feature_state)).scalar()


def test_anonymous_events_count_for_the_user_after_identify(runtime: Runtime) -> None:
    feed(
        runtime,
        [ev(1, anonymous_id="d1", item_id="i1", context={"device": {"type": "mobile"}})],
        [ev(2, anonymous_id="d1", item_id="i2")],
        [ev(3, "identify", anonymous_id="d1", user_id="u1")],
        [ev(4, anonymous_id="d1", item_id="i3"), ev(5, "purchase", user_id="u1", item_id="i3", value=20.0)],
    )
    store = consumer(runtime).store
    assert set(store.persons) == {"u:u1"}  # the device's history moved to the person
    values = store.values("u:u1", REFS, NOW)
    assert values[VIEWS_7D] == 3 and values[ITEMS_ALL] == 3 and values[SPEND] == 20.0
    assert values[DEVICE] == "mobile"
    assert stored_rows(runtime) == 1


def test_listeners_hear_who_changed(runtime: Runtime) -> None:
    heard: list[tuple[set[str], float]] = []
    consumer(runtime).add_listener(lambda keys, now: heard.append((set(keys), now)))
    feed(runtime, [ev(1, user_id="u1"), ev(2, anonymous_id="d9")])
    assert heard and set().union(*(k for k, _ in heard)) == {"u:u1", "a:d9"}
    assert all(abs(now - time.time()) < 60 for _, now in heard)


def test_a_restart_after_a_crash_equals_a_full_replay(make_runtime: Callable[..., Runtime]) -> None:
    first = make_runtime()
    events = [
        ev(
            i,
            ["view", "purchase", "share"][i % 3],
            age=(i * 3571) % (9 * 86400),
            user_id=f"u{i % 4}",
            item_id=f"i{i % 6}",
            value=float(i % 5),
            properties={"dwell_seconds": i % 9},
        )
        for i in range(60)
    ]
    feed(first, events[:30])  # durable: written with the position
    first.ingest.ingest(events[30:] + [ev(99, "identify", anonymous_id="d1", user_id="u1")])
    # The realtime lane applies the rest in memory only, then the process "dies" (no flush).
    first.pipeline.runner("profiles").step()
    first.pipeline.runner("features").step()
    assert consumer(first)._applied > first.pipeline.runner("features").position
    first.engine.dispose()

    second = make_runtime()
    second.catch_up()
    store = consumer(second).store
    restarted = {key: store.values(key, REFS, NOW) for key in sorted(store.persons)}
    second.pipeline.runner("features").reset()
    assert stored_rows(second) == 0 and not store.persons
    second.catch_up()
    replayed = {key: store.values(key, REFS, NOW) for key in sorted(store.persons)}
    assert restarted == replayed
    assert sum(v[VIEWS_7D] for v in replayed.values()) == sum(
        1 for e in events if e["type"] == "view" and e["timestamp"] > NOW - 7 * 86400
    )


def test_a_retried_batch_is_not_counted_twice(runtime: Runtime) -> None:
    feed(runtime, [ev(1, user_id="u1")])
    features = consumer(runtime)
    batch = runtime.log.read(0, 100)
    with runtime.engine.begin() as conn:
        features.handle(batch, conn)  # the same batch again, as after a failed commit
    assert features.store.values("u:u1", [VIEWS_7D], NOW)[VIEWS_7D] == 1


def test_reset_forgets_everything(runtime: Runtime) -> None:
    feed(runtime, [ev(1, user_id="u1")])
    runtime.pipeline.runner("features").reset()
    assert stored_rows(runtime) == 0
    assert consumer(runtime).store.values("u:u1", [VIEWS_7D], NOW)[VIEWS_7D] == 0


def test_features_never_run_ahead_of_identity_stitching(runtime: Runtime) -> None:
    """Were profiles behind (failing), features must wait, or events would land on the device for good."""
    runtime.ingest.ingest([ev(1, anonymous_id="d1"), ev(2, "identify", anonymous_id="d1", user_id="u1")])
    features = runtime.pipeline.runner("features")
    with pytest.raises(FeaturesWaiting, match="profiles"):
        features.step()
    assert features.cursor == 0 and not consumer(runtime).store.persons
    runtime.catch_up()
    assert set(consumer(runtime).store.persons) == {"u:u1"}


def test_an_alias_of_an_alias_moves_the_whole_history(runtime: Runtime) -> None:
    """prev -> x, then prev -> new: x (which holds prev's events) is merged into new, unnamed."""
    feed(
        runtime,
        [ev(1, user_id="prev"), ev(2, user_id="x")],
        [ev(3, "alias", user_id="x", properties={"previous_id": "prev"})],
        [ev(4, "alias", user_id="new", properties={"previous_id": "prev"})],
    )
    store = consumer(runtime).store
    replayed_keys = set(store.persons)
    assert replayed_keys == {"u:new"}, replayed_keys
    assert store.values("u:new", [VIEWS_7D], NOW)[VIEWS_7D] == 2
    runtime.pipeline.runner("features").reset()
    runtime.catch_up()
    assert set(store.persons) == replayed_keys


def test_the_eraser_drops_a_persons_features(runtime: Runtime) -> None:
    from types import SimpleNamespace

    from attune.consumers.features import FeaturesEraser

    feed(runtime, [ev(1, user_id="u1"), ev(2, user_id="u2")])
    features = consumer(runtime)
    with runtime.engine.begin() as conn:
        erased = FeaturesEraser(features).erase(SimpleNamespace(subject_keys=["u:u1", "a:gone"], conn=conn))
    assert erased == 1 and set(features.store.persons) == {"u:u2"} and stored_rows(runtime) == 1


def test_states_serialized_before_the_flush_are_written_by_it(runtime: Runtime) -> None:
    runtime.ingest.ingest([ev(1, user_id="u1"), ev(2, user_id="u2")])
    runner = runtime.pipeline.runner("profiles")
    runner.drain()
    features_runner = runtime.pipeline.runner("features")
    features_runner.step()
    assert stored_rows(runtime) == 0  # applied in memory, not yet written
    features_runner.flush()  # prepares outside the transaction, then writes
    assert stored_rows(runtime) == 2 and features_runner.position == 2


def test_a_person_erased_between_prepare_and_flush_is_not_written_back(runtime: Runtime) -> None:
    from types import SimpleNamespace

    from attune.consumers.features import FeaturesEraser

    runtime.ingest.ingest([ev(1, user_id="u1"), ev(2, user_id="u2")])
    runtime.pipeline.runner("profiles").drain()
    features_runner = runtime.pipeline.runner("features")
    features_runner.step()
    features = consumer(runtime)
    features.prepare_flush()
    with runtime.engine.begin() as conn:
        FeaturesEraser(features).erase(SimpleNamespace(subject_keys=["u:u1"], conn=conn))
    features_runner.flush()
    with runtime.engine.connect() as conn:
        keys = set(conn.execute(select(feature_state.c.subject_key)).scalars())
    assert keys == {"u:u2"}


def test_a_flush_pauses_between_pieces_of_serialization_and_writes_everyone(runtime: Runtime) -> None:
    from attune.consumers import features as features_module

    people = 2 * features_module._PAUSE_EVERY + 5
    runtime.ingest.ingest([ev(n, user_id=f"u{n}") for n in range(people)])
    runtime.pipeline.runner("profiles").drain()
    features_runner = runtime.pipeline.runner("features")
    features_runner.drain()
    features = consumer(runtime)
    runtime.ingest.ingest([ev(people + n, user_id=f"u{n}") for n in range(people)])
    runtime.pipeline.runner("profiles").drain()
    while features_runner.step():
        pass
    serialized_at_pauses: list[int] = []
    features_runner.pause = lambda: serialized_at_pauses.append(len(features._prepared))
    features_runner.flush()
    # Three pieces of at most _PAUSE_EVERY people, a pause after each; then all were written.
    assert serialized_at_pauses == [features_module._PAUSE_EVERY, 2 * features_module._PAUSE_EVERY, people]
    with runtime.engine.connect() as conn:
        states = dict(conn.execute(select(feature_state.c.subject_key, feature_state.c.state)).all())
    assert len(states) == people
    assert all(states[key] == features.store.dump(key) for key in states)
