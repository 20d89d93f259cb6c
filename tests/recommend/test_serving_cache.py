"""The serving caches answer from memory and stay exactly as current as the store."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_shop import send
from sqlalchemy import event

from attune.recommend.filters import Filters
from attune.runtime import Runtime


class QueryCounter:
    """Counts the SQL statements this thread runs (background warm-up threads do not count)."""

    def __init__(self, runtime: Runtime) -> None:
        self.count = 0
        self.thread = threading.get_ident()
        event.listen(runtime.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        if threading.get_ident() == self.thread:
            self.count += 1


@pytest.fixture
def live(make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime with popularity cached for a while (as when serving) and a few people."""
    runtime = make_runtime(recommend={"cache_seconds": 600})
    send(runtime, [{"type": "view", "user_id": f"p{n}", "item_id": f"i{n % 3}"} for n in range(6)])
    return runtime


def test_a_warm_request_reads_nothing_from_the_store(live: Runtime) -> None:
    service = live.recommendations
    service.for_user("p1")  # fills the people cache, catalog view and popularity
    counter = QueryCounter(live)
    first = service.try_json("p1", 10, Filters())
    again = service.try_json("p1", 10, Filters())
    assert first is not None and first == again
    assert counter.count == 0


def test_new_events_are_seen_by_the_very_next_request(live: Runtime) -> None:
    service = live.recommendations
    service.for_user("p1")
    assert service.users.peek("p1") is not None
    send(live, [{"type": "view", "user_id": "p1", "item_id": "i2"}])
    assert service.users.peek("p1") is None  # the consumer moved on: the cached person is stale
    assert "i2" in service.users.get("p1").seen
    assert "i2" not in {i.item_id for i in service.for_user("p1").items}


def test_people_the_new_events_do_not_mention_stay_cached(live: Runtime) -> None:
    service = live.recommendations
    service.for_user("p1")
    service.for_user("p2")
    send(live, [{"type": "view", "user_id": "p1", "item_id": "i2"}])
    service.users.sync()
    assert service.users.peek("p2") is not None and service.users.peek("p1") is None


def test_identity_stitching_reaches_cached_people(live: Runtime) -> None:
    service = live.recommendations
    service.for_user("u7")
    send(live, [{"type": "view", "anonymous_id": "device7", "item_id": "i1"}])
    service.for_user("device7")
    send(live, [{"type": "identify", "anonymous_id": "device7", "user_id": "u7"}])
    assert service.users.get("u7").seen == {"i1"}
    assert service.users.get("device7").key == service.users.get("u7").key


def test_an_alias_merge_drops_the_old_id(live: Runtime) -> None:
    service = live.recommendations
    send(live, [{"type": "view", "user_id": "old-id", "item_id": "i0"}])
    before = service.users.get("old-id")
    assert before.key == "u:old-id"
    send(live, [{"type": "alias", "user_id": "new-id", "properties": {"previous_id": "old-id"}}])
    after = service.users.get("old-id")
    assert after.key == "u:new-id" and after.seen == {"i0"}


def test_forget_and_preload(live: Runtime) -> None:
    service = live.recommendations
    assert service.users.preload() == 6
    assert service.users.peek("p3") is not None and service.users.peek("p3").seen == {"i0"}
    service.users.forget(["u:p3"])
    assert service.users.peek("p3") is None


def test_a_catalog_change_in_this_process_is_seen_at_once(live: Runtime) -> None:
    service = live.recommendations
    assert "i1" in {i.item_id for i in service.for_user("stranger").items}
    live.catalog.upsert([("i1", {"available": False})])
    assert service.catalog_view.peek() is None
    assert "i1" not in {i.item_id for i in service.for_user("stranger").items}


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("view"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["i0", "i1", "i2", "i3"])
        ),
        st.tuples(
            st.just("anon-view"), st.sampled_from(["d1", "d2"]), st.sampled_from(["i0", "i1", "i2", "i3"])
        ),
        st.tuples(st.just("identify"), st.sampled_from(["d1", "d2"]), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("alias"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"])),
    ),
    min_size=1,
    max_size=8,
)


@given(steps=ops)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_cache_always_agrees_with_the_store(make_runtime: Callable[..., Runtime], steps) -> None:
    runtime = make_runtime()
    service = runtime.recommendations
    people = ["a", "b", "c", "d1", "d2"]
    for kind, first, second in steps:
        if kind == "view":
            event_ = {"type": "view", "user_id": first, "item_id": second}
        elif kind == "anon-view":
            event_ = {"type": "view", "anonymous_id": first, "item_id": second}
        elif kind == "identify":
            event_ = {"type": "identify", "anonymous_id": first, "user_id": second}
        else:
            event_ = {"type": "alias", "user_id": first, "properties": {"previous_id": second}}
        send(runtime, [event_])
        for person in people:
            cached = service.users.get(person)
            fresh = runtime.profiles.serving_snapshot(person)
            assert (cached.key, cached.interactions) == (fresh.key, fresh.interactions), (
                kind,
                first,
                second,
                person,
            )
