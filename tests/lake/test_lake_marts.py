"""The data marts on synthetic events with known answers."""

from __future__ import annotations

import datetime as dt

import pytest

from attune.lake.query import connect

DAY = "2024-03-05"
NEXT = "2024-03-06"


def at(date: str, clock: str) -> str:
    """An ISO 8601 UTC time on ``date``."""
    return f"{date}T{clock}Z"


# On 03-05: item A gets 3 views (u1 twice, u2 once) and 1 purchase (u2, 30.0); item B gets a
# click and an add-to-cart from anonymous a9 and a rating from u1; u1 also views a page (no item).
# On 03-06: u1 buys A for 12.5 without viewing it.
EVENTS = [
    {"type": "view", "user_id": "u1", "item_id": "A", "timestamp": at(DAY, "08:00:00"), "context": {"session_id": "s1"}},
    {"type": "view", "user_id": "u1", "item_id": "A", "timestamp": at(DAY, "08:05:00"), "context": {"session_id": "s1"}},
    {"type": "rating", "user_id": "u1", "item_id": "B", "value": 4, "timestamp": at(DAY, "08:10:00"), "context": {"session_id": "s1"}},
    {"type": "page_view", "user_id": "u1", "timestamp": at(DAY, "21:30:00"), "context": {"session_id": "s2"}},
    {"type": "view", "user_id": "u2", "item_id": "A", "timestamp": at(DAY, "12:00:00"), "context": {"session_id": "s3"}},
    {"type": "purchase", "user_id": "u2", "item_id": "A", "value": 30.0, "timestamp": at(DAY, "12:02:00"), "context": {"session_id": "s3"}},
    {"type": "click", "anonymous_id": "a9", "item_id": "B", "timestamp": at(DAY, "23:59:59"), "context": {"session_id": "s4"}},
    {"type": "add_to_cart", "anonymous_id": "a9", "item_id": "B", "timestamp": at(DAY, "23:59:59.5"), "context": {"session_id": "s4"}},
    {"type": "purchase", "user_id": "u1", "item_id": "A", "value": 12.5, "timestamp": at(NEXT, "00:00:00"), "context": {"session_id": "s5"}},
]  # fmt: skip


@pytest.fixture
def lake(settings, ingest):
    """A DuckDB connection over a lake holding EVENTS."""
    ingest(EVENTS)
    con = connect(settings)
    yield con
    con.close()


def rows(con, sql: str) -> list[dict]:
    """Query result as dicts (through Arrow, see attune.lake.query.connect)."""
    return con.sql(sql).to_arrow_table().to_pylist()


def test_daily_item_stats_known_answers(lake):
    stats = {(str(r["date"]), r["item_id"]): r for r in rows(lake, "SELECT * FROM daily_item_stats")}

    assert set(stats) == {(DAY, "A"), (DAY, "B"), (NEXT, "A")}
    a = stats[(DAY, "A")]
    assert (a["views"], a["clicks"], a["add_to_carts"], a["purchases"], a["ratings"]) == (3, 0, 0, 1, 0)
    assert a["unique_users"] == 2
    assert a["revenue"] == 30.0
    assert a["conversion_rate"] == pytest.approx(1 / 3)

    b = stats[(DAY, "B")]
    assert (b["views"], b["clicks"], b["add_to_carts"], b["purchases"], b["ratings"]) == (0, 1, 1, 0, 1)
    assert b["unique_users"] == 2  # u1 and the anonymous a9
    assert b["revenue"] == 0.0  # the rating's value is not revenue
    assert b["conversion_rate"] is None  # no views: undefined, not zero

    late = stats[(NEXT, "A")]
    assert (late["views"], late["purchases"], late["unique_users"], late["revenue"]) == (0, 1, 1, 12.5)


def test_daily_item_stats_columns(lake):
    names = [row[0] for row in lake.sql("DESCRIBE daily_item_stats").fetchall()]
    assert names == [
        "date",
        "item_id",
        "views",
        "clicks",
        "add_to_carts",
        "purchases",
        "ratings",
        "unique_users",
        "revenue",
        "conversion_rate",
    ]


def test_daily_user_activity_known_answers(lake):
    activity = {(str(r["date"]), r["user_id"]): r for r in rows(lake, "SELECT * FROM daily_user_activity")}

    assert set(activity) == {(DAY, "u1"), (DAY, "u2"), (DAY, "a9"), (NEXT, "u1")}
    u1 = activity[(DAY, "u1")]
    assert (u1["events"], u1["sessions"], u1["items"], u1["views"], u1["purchases"]) == (4, 2, 2, 2, 0)
    assert u1["revenue"] == 0.0
    assert u1["first_seen"] == dt.datetime(2024, 3, 5, 8, 0, tzinfo=dt.UTC)
    assert u1["last_seen"] == dt.datetime(2024, 3, 5, 21, 30, tzinfo=dt.UTC)

    u2 = activity[(DAY, "u2")]
    assert [u2[k] for k in ("events", "sessions", "items", "views", "purchases", "revenue")] == [
        2,
        1,
        1,
        1,
        1,
        30.0,
    ]

    anonymous = activity[(DAY, "a9")]
    assert (anonymous["events"], anonymous["items"], anonymous["views"]) == (2, 1, 0)
    assert anonymous["last_seen"] == dt.datetime(2024, 3, 5, 23, 59, 59, 500000, tzinfo=dt.UTC)

    next_day = activity[(NEXT, "u1")]
    assert (next_day["events"], next_day["purchases"], next_day["revenue"]) == (1, 1, 12.5)


def test_marts_agree_with_the_events_they_summarize(lake):
    (total,) = lake.sql(
        "SELECT (SELECT sum(events) FROM daily_user_activity) = (SELECT count(*) FROM events)"
    ).fetchall()[0]
    assert total is True
    revenue = lake.sql("SELECT sum(revenue) FROM daily_item_stats").fetchall()[0][0]
    assert revenue == 42.5


def test_marts_are_documented_in_duckdb(lake):
    comments = dict(lake.sql("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    assert "item_id" in comments["daily_item_stats"]
    assert "anonymous_id" in comments["daily_user_activity"]
