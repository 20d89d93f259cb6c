"""The lake consumer: partition layout, exact read-back, buffering, crash safety and reset."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import attune.lake.consumer as consumer_module
from attune.events.model import Event, LoggedEvent
from attune.lake.consumer import LakeConsumer
from attune.lake.query import connect
from attune.lake.schema import EVENT_SCHEMA, duckdb_columns
from attune.log.sql import get_position, set_position
from attune.runtime import Runtime

# Offsets 1..3 in this order: the first and third fall on 2024-03-05 (UTC), the second on 03-06.
EVENTS = [
    {
        "event_id": "e1",
        "type": "view",
        "user_id": "u1",
        "item_id": "A",
        "timestamp": "2024-03-05T23:59:59.999Z",
        "context": {
            "device": {"type": "mobile", "os": "iOS", "browser": "Safari"},
            "geo": {"country": "DE", "city": "Berlin"},
            "page": {"url": "https://shop.example/a", "referrer": "https://search.example/"},
            "session_id": "s1",
            "source": "web",
        },
        "properties": {"position": 3, "tags": ["x", "y"]},
    },
    {
        "event_id": "e2",
        "type": "purchase",
        "user_id": "u1",
        "item_id": "A",
        "value": 19.5,
        "timestamp": "2024-03-06T00:00:00Z",
        "context": {"session_id": "s1"},
    },
    {
        "event_id": "e3",
        "type": "identify",
        "anonymous_id": "anon-7",
        "timestamp": 1709632800,  # 2024-03-05T10:00:00Z
        "traits": {"age": 31, "plan": "pro"},
    },
]

DAY1 = Path("events/date=2024-03-05/part-000000000001-000000000003.parquet")
DAY2 = Path("events/date=2024-03-06/part-000000000002-000000000002.parquet")


def lake_files(lake_dir: Path) -> list[Path]:
    """Every part file, relative to the lake directory, sorted."""
    return sorted(p.relative_to(lake_dir) for p in lake_dir.glob("events/*/*.parquet"))


def lake_offsets(lake_dir: Path) -> list[int]:
    """Every offset stored in any part file, sorted (duplicates kept)."""
    return sorted(o for f in lake_files(lake_dir) for o in pq.read_table(lake_dir / f)["offset"].to_pylist())


def read_events(settings) -> list[dict]:
    """The lake's events as DuckDB reads them, in offset order."""
    con = connect(settings)
    try:
        return con.sql('SELECT * FROM events ORDER BY "offset"').to_arrow_table().to_pylist()
    finally:
        con.close()


def logged(offset: int, timestamp: float, **fields) -> LoggedEvent:
    """A logged event with only what a test needs."""
    event = Event(event_id=f"e{offset}", type="view", timestamp=timestamp, received_at=timestamp, **fields)
    return LoggedEvent(offset, event)


MARCH_5 = 1709632800.0  # 2024-03-05T10:00:00Z
MARCH_6 = MARCH_5 + 86400


def test_events_land_in_one_file_per_utc_date(runtime: Runtime, ingest, settings):
    ingest(EVENTS)

    assert lake_files(settings.lake_dir) == [DAY1, DAY2]
    with runtime.engine.connect() as conn:
        assert get_position(conn, "lake") == 3
    day1 = pq.read_table(settings.lake_dir / DAY1)
    assert day1.column("offset").to_pylist() == [1, 3]  # log order inside a file
    assert day1.schema.remove_metadata() == EVENT_SCHEMA
    metadata = pq.ParquetFile(settings.lake_dir / DAY1).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_duckdb_reads_back_exactly_the_ingested_events(ingest, settings):
    ingest(EVENTS)

    rows = read_events(settings)
    assert len(rows) == 3
    assert list(rows[0]) == [name for name, _ in duckdb_columns()]
    first, second, third = rows
    assert first["event_id"] == "e1" and first["type"] == "view"
    assert (first["user_id"], first["anonymous_id"], first["item_id"]) == ("u1", None, "A")
    assert first["timestamp"].isoformat() == "2024-03-05T23:59:59.999000+00:00"
    assert str(first["date"]) == "2024-03-05"
    assert first["session_id"] == "s1"
    assert (first["device_type"], first["os"], first["browser"]) == ("mobile", "iOS", "Safari")
    assert (first["country"], first["city"]) == ("DE", "Berlin")
    assert (first["url"], first["referrer"]) == ("https://shop.example/a", "https://search.example/")
    assert first["source"] == "web"
    assert json.loads(first["properties"]) == {"position": 3, "tags": ["x", "y"]}
    assert first["traits"] is None and first["value"] is None

    assert second["type"] == "purchase" and second["value"] == 19.5
    assert str(second["date"]) == "2024-03-06"
    assert second["timestamp"].isoformat() == "2024-03-06T00:00:00+00:00"
    assert second["properties"] is None and second["device_type"] is None

    assert third["anonymous_id"] == "anon-7" and third["user_id"] is None
    assert json.loads(third["traits"]) == {"age": 31, "plan": "pro"}
    assert str(third["date"]) == "2024-03-05"
    assert all(row["received_at"] is not None for row in rows)


def test_events_view_column_types_match_the_schema(ingest, settings):
    ingest(EVENTS)
    con = connect(settings)
    try:
        described = [(name, kind) for name, kind, *_ in con.sql("DESCRIBE events").fetchall()]
    finally:
        con.close()
    expected = [
        (name, "TIMESTAMP WITH TIME ZONE" if kind == "TIMESTAMPTZ" else kind)
        for name, kind in duckdb_columns()
    ]
    assert described == expected


def test_handle_buffers_until_flush_events_then_writes(tmp_path):
    consumer = LakeConsumer(tmp_path, flush_events=3)

    assert consumer.flush(None) is None  # nothing buffered yet
    assert consumer.handle([logged(1, MARCH_5), logged(2, MARCH_5)], None) is None
    assert lake_files(tmp_path) == []
    assert consumer.handle([logged(3, MARCH_6), logged(4, MARCH_5 + 1)], None) == 4
    assert lake_files(tmp_path) == [
        Path("events/date=2024-03-05/part-000000000001-000000000004.parquet"),
        Path("events/date=2024-03-06/part-000000000003-000000000003.parquet"),
    ]
    assert consumer.handle([logged(5, MARCH_6)], None) is None
    assert consumer.flush(None) == 5
    assert consumer.flush(None) is None
    assert len(lake_files(tmp_path)) == 3


def test_restart_with_position_reset_does_not_duplicate(make_runtime):
    """On every store backend (the position lives there; the files do not)."""
    first = make_runtime()
    first.ingest.ingest(EVENTS)
    first.catch_up()
    lake_dir = first.settings.lake_dir
    assert lake_files(lake_dir) == [DAY1, DAY2]
    # A crash after the files were written but before the position was committed.
    with first.engine.begin() as conn:
        set_position(conn, "lake", 0)

    restarted = make_runtime()
    assert restarted.pipeline.runner("lake").position == 0
    # A new event arrives too, so a replay that ignored the files would write offsets 1-4 anew.
    restarted.ingest.ingest([{"type": "view", "user_id": "u9", "timestamp": "2024-03-05T12:00:00Z"}])
    restarted.catch_up()
    with restarted.engine.connect() as conn:
        assert get_position(conn, "lake") == 4

    assert lake_files(lake_dir) == [
        DAY1,
        Path("events/date=2024-03-05/part-000000000004-000000000004.parquet"),
        DAY2,
    ]
    assert lake_offsets(lake_dir) == [1, 2, 3, 4]


def test_crash_between_the_days_of_one_flush_rewrites_only_the_missing_day(tmp_path):
    batch = [logged(1, MARCH_5), logged(2, MARCH_6), logged(3, MARCH_5 + 60)]
    first = LakeConsumer(tmp_path, flush_events=100)
    first.handle(batch, None)
    assert first.flush(None) == 3
    # As if the process died after writing 03-05 but before writing 03-06.
    (tmp_path / "events/date=2024-03-06/part-000000000002-000000000002.parquet").unlink()

    second = LakeConsumer(tmp_path, flush_events=100)
    second.handle([*batch, logged(4, MARCH_5 + 120)], None)
    assert second.flush(None) == 4

    assert lake_files(tmp_path) == [
        Path("events/date=2024-03-05/part-000000000001-000000000003.parquet"),
        Path("events/date=2024-03-05/part-000000000004-000000000004.parquet"),
        Path("events/date=2024-03-06/part-000000000002-000000000002.parquet"),
    ]
    assert lake_offsets(tmp_path) == [1, 2, 3, 4]


def test_batch_retried_after_a_failed_write_is_not_duplicated(tmp_path, monkeypatch):
    real_write = consumer_module.write_part
    calls = []

    def write_then_fail(lake_dir, day, table):
        calls.append(day)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(lake_dir, day, table)

    monkeypatch.setattr(consumer_module, "write_part", write_then_fail)
    consumer = LakeConsumer(tmp_path, flush_events=2)
    batch = [logged(1, MARCH_5), logged(2, MARCH_6), logged(3, MARCH_5 + 60)]
    with pytest.raises(OSError, match="disk full"):
        consumer.handle(batch, None)
    # The runner did not advance, so it hands over the same batch again.
    assert consumer.handle(batch, None) == 3

    assert len(calls) == 3  # the day written before the failure was not written twice
    assert lake_offsets(tmp_path) == [1, 2, 3]


def test_left_over_temp_files_are_invisible_and_cleaned_up(ingest, settings):
    ingest(EVENTS)
    leftover = settings.lake_dir / "events/date=2024-03-05/.part-000000000009-000000000009.parquet.tmp"
    leftover.write_bytes(b"PAR1 half a file")

    assert len(read_events(settings)) == 3
    consumer = LakeConsumer(settings.lake_dir, flush_events=10)
    assert consumer.handle([logged(10, MARCH_5)], None) is None
    assert not leftover.exists()


def test_reset_deletes_the_lake_and_replay_rebuilds_it(runtime: Runtime, ingest, settings):
    ingest(EVENTS)
    before = read_events(settings)

    runtime.pipeline.runner("lake").reset()
    assert not (settings.lake_dir / "events").exists()
    assert read_events(settings) == []

    runtime.catch_up()
    assert lake_files(settings.lake_dir) == [DAY1, DAY2]
    assert read_events(settings) == before


def test_non_string_context_values_are_stored_as_json_text(tmp_path, settings):
    consumer = LakeConsumer(settings.lake_dir, flush_events=10)
    odd = logged(
        1, MARCH_5, context={"geo": {"country": 49, "city": {"name": "Köln"}}, "device": "not-a-dict"}
    )
    consumer.handle([odd, logged(2, MARCH_5, context={"geo": {"country": "FR"}})], None)
    assert consumer.flush(None) == 2

    rows = read_events(settings)
    assert [(row["country"], row["city"]) for row in rows] == [("49", '{"name":"Köln"}'), ("FR", None)]
    assert rows[0]["device_type"] is None
