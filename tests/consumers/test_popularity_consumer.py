"""The popularity consumer's daily totals and the time-decayed ranking served from them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from attune.consumers.popularity import SECONDS_PER_DAY, event_weight
from attune.recommend.popularity import PopularityRanker
from attune.runtime import Runtime
from attune.storage.tables import item_daily

DAY0 = 20_700  # a UTC day number (2026-09)
WEIGHTS = {"view": 1.0, "purchase": 8.0, "rating": 3.0}


def at(day: int, hour: int = 12) -> float:
    return day * SECONDS_PER_DAY + hour * 3600.0


def feed(runtime: Runtime, events: list[dict]) -> None:
    stamped = [{"event_id": f"p{n}", **e} for n, e in enumerate(events)]
    report = runtime.ingest.ingest(stamped, now=at(DAY0 + 400))
    assert not report.rejected, report.rejected
    runtime.catch_up()


def daily(runtime: Runtime) -> dict[tuple[str, int], tuple[float, int]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(item_daily.c.item_id, item_daily.c.day, item_daily.c.weight, item_daily.c.events)
        )
        return {(i, d): (w, n) for i, d, w, n in rows}


@pytest.mark.parametrize(
    ("event_type", "value", "expected"),
    [
        ("view", None, 1.0),
        ("purchase", 99.0, 8.0),  # value is a price here, not a weight
        ("rating", 5.0, 3.0),
        ("rating", 2.5, 1.5),
        ("rating", 9.0, 3.0),  # clipped to the 0..5 scale
        ("rating", -1.0, 0.0),
        ("search", None, 0.0),  # types without a weight do not count
    ],
)
def test_event_weight(event_type: str, value: float | None, expected: float) -> None:
    assert event_weight(event_type, value, WEIGHTS) == pytest.approx(expected)


def test_consumer_sums_weights_per_item_and_day(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            {"type": "view", "user_id": "u1", "item_id": "i1", "timestamp": at(DAY0, 1)},
            {"type": "view", "user_id": "u2", "item_id": "i1", "timestamp": at(DAY0, 23)},
            {"type": "purchase", "user_id": "u2", "item_id": "i1", "timestamp": at(DAY0 + 1)},
            {"type": "rating", "user_id": "u3", "item_id": "i2", "value": 4, "timestamp": at(DAY0)},
            {"type": "search", "user_id": "u3", "item_id": "i3", "timestamp": at(DAY0)},  # weight 0: skipped
            {"type": "view", "user_id": "u3", "timestamp": at(DAY0)},  # no item: skipped
        ],
    )
    assert daily(runtime) == {
        ("i1", DAY0): (2.0, 2),
        ("i1", DAY0 + 1): (8.0, 1),
        ("i2", DAY0): (pytest.approx(2.4), 1),
    }
    # A later batch adds to the same rows instead of replacing them.
    feed(
        runtime,
        [{"type": "view", "user_id": "u4", "item_id": "i1", "timestamp": at(DAY0, 5), "event_id": "x"}],
    )
    assert daily(runtime)[("i1", DAY0)] == (3.0, 3)


def test_recent_item_outranks_an_older_one_with_equal_weight(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            {"type": "view", "user_id": "u1", "item_id": "old", "timestamp": at(DAY0)},
            {"type": "view", "user_id": "u1", "item_id": "new", "timestamp": at(DAY0 + 14)},
        ],
    )
    ranker = PopularityRanker(runtime.engine, half_life_days=14.0, cache_seconds=0)
    top = ranker.top(10)
    assert [item for item, _ in top] == ["new", "old"]
    # One half-life older: exactly half the score.
    assert top[0][1] == pytest.approx(1.0) and top[1][1] == pytest.approx(0.5)


def test_more_engagement_beats_recency_within_the_half_life(runtime: Runtime) -> None:
    feed(
        runtime,
        [{"type": "view", "user_id": f"u{n}", "item_id": "hit", "timestamp": at(DAY0)} for n in range(3)]
        + [{"type": "view", "user_id": "u9", "item_id": "fresh", "timestamp": at(DAY0 + 7)}],
    )
    ranker = PopularityRanker(runtime.engine, half_life_days=14.0, cache_seconds=0)
    assert [item for item, _ in ranker.top(2)] == ["hit", "fresh"]


def test_ranker_excludes_and_limits(runtime: Runtime) -> None:
    feed(
        runtime,
        [{"type": "view", "user_id": "u", "item_id": f"i{n}", "timestamp": at(DAY0, n)} for n in range(5)],
    )
    ranker = PopularityRanker(runtime.engine, half_life_days=14.0, cache_seconds=0)
    picked = [item for item, _ in ranker.top(2, exclude={"i0", "i1"})]
    assert len(picked) == 2 and not {"i0", "i1"} & set(picked)


def test_empty_store_ranks_nothing(runtime: Runtime) -> None:
    assert PopularityRanker(runtime.engine, 14.0, 0).top(10) == []


def test_recommendations_skip_seen_and_unavailable_items(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            {"type": "purchase", "user_id": f"buyer{n}", "item_id": "best", "timestamp": at(DAY0)}
            for n in range(3)
        ]
        + [{"type": "purchase", "user_id": "b", "item_id": "gone", "timestamp": at(DAY0)} for _ in range(2)]
        + [{"type": "view", "user_id": "b", "item_id": "plain", "timestamp": at(DAY0)}],
    )
    runtime.catalog.upsert([("gone", {"available": False})])
    anonymous = runtime.recommendations.for_user("stranger", k=10)
    assert [i.item_id for i in anonymous.items] == ["best", "plain"]
    assert anonymous.personalized is False
    buyer = runtime.recommendations.for_user("buyer0", k=10)
    assert [i.item_id for i in buyer.items] == ["plain"]
    assert [i.item_id for i in runtime.recommendations.for_user("stranger", 10, {"best"}).items] == ["plain"]


def test_replay_rebuilds_the_same_totals(runtime: Runtime) -> None:
    feed(
        runtime,
        [
            {"type": "view", "user_id": "u", "item_id": f"i{n % 3}", "timestamp": at(DAY0, n)}
            for n in range(9)
        ],
    )
    before = daily(runtime)
    runtime.pipeline.replay()
    assert daily(runtime) == before
