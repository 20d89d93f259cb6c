"""Queries over the lake: the empty lake, output formats and SQL errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from attune.errors import BadRequest
from attune.lake.query import connect, print_query
from attune.lake.schema import duckdb_columns

EVENTS = [
    {"type": "view", "user_id": "u1", "item_id": "A", "timestamp": "2024-03-05T08:00:00Z"},
    {"type": "view", "user_id": "u2", "item_id": "A", "timestamp": "2024-03-05T09:00:00Z"},
    {"type": "purchase", "user_id": "u2", "item_id": "A", "value": 30.0, "timestamp": "2024-03-05T09:01:00Z"},
]


def run(settings, sql: str, fmt: str) -> str:
    """What print_query prints."""
    out = io.StringIO()
    print_query(settings, sql, fmt, out=out)
    return out.getvalue()


def test_empty_lake_has_the_events_columns_and_no_rows(settings):
    assert not settings.lake_dir.exists()
    con = connect(settings)
    try:
        described = [(name, kind) for name, kind, *_ in con.sql("DESCRIBE events").fetchall()]
        counts = [
            con.sql(f"SELECT count(*) FROM {view}").fetchall()[0][0]
            for view in ("events", "daily_item_stats", "daily_user_activity")
        ]
    finally:
        con.close()
    assert [name for name, _ in described] == [name for name, _ in duckdb_columns()]
    assert dict(described)["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert dict(described)["date"] == "DATE"
    assert counts == [0, 0, 0]


def test_empty_lake_queries_print_headers_only(settings):
    assert run(settings, "SELECT date, item_id, views FROM daily_item_stats", "csv") == "date,item_id,views\n"
    assert json.loads(run(settings, 'SELECT "offset" FROM events', "json")) == []


def test_csv_output(settings, ingest):
    ingest(EVENTS)
    text = run(settings, "SELECT item_id, views, purchases, revenue, date FROM daily_item_stats", "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["item_id", "views", "purchases", "revenue", "date"],
        ["A", "2", "1", "30.0", "2024-03-05"],
    ]


def test_json_output_is_an_array_of_objects(settings, ingest):
    ingest(EVENTS)
    text = run(settings, 'SELECT "offset", user_id, value, timestamp FROM events ORDER BY "offset"', "json")
    assert json.loads(text) == [
        {"offset": 1, "user_id": "u1", "value": None, "timestamp": "2024-03-05T08:00:00+00:00"},
        {"offset": 2, "user_id": "u2", "value": None, "timestamp": "2024-03-05T09:00:00+00:00"},
        {"offset": 3, "user_id": "u2", "value": 30.0, "timestamp": "2024-03-05T09:01:00+00:00"},
    ]


def test_table_output_shows_headers_and_values(settings, ingest):
    ingest(EVENTS)
    text = run(settings, "SELECT item_id, unique_users, conversion_rate FROM daily_item_stats", "table")
    lines = text.splitlines()
    header = next(line for line in lines if "item_id" in line)
    assert "unique_users" in header and "conversion_rate" in header
    row = next(line for line in lines if " A " in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["A", "2", "0.5"]


def test_sql_error_becomes_bad_request_with_duckdb_message(settings):
    with pytest.raises(BadRequest) as caught:
        run(settings, "SELECT nope FROM events", "csv")
    assert caught.value.status == 400
    assert "SQL error" in caught.value.message
    assert 'column "nope"' in caught.value.message


def test_unknown_format_and_empty_query_are_refused(settings):
    with pytest.raises(BadRequest, match="--format: must be one of table, csv, json"):
        run(settings, "SELECT 1", "xml")
    with pytest.raises(BadRequest, match="query: must not be empty"):
        run(settings, "   ", "csv")


def test_queries_cannot_reach_the_sql_store(settings, ingest):
    ingest(EVENTS)
    con = connect(settings)
    try:
        databases = {row[0] for row in con.sql("SELECT database_name FROM duckdb_databases()").fetchall()}
    finally:
        con.close()
    assert databases == {"memory", "system", "temp"}


def test_json_keeps_integer_sums_integers(settings, ingest):
    ingest(EVENTS)
    # sum() of BIGINT is HUGEINT in DuckDB and reaches Python as a Decimal.
    text = run(settings, "SELECT sum(views) AS views, sum(revenue) AS revenue FROM daily_item_stats", "json")
    assert text.strip() == '[\n{"views":2,"revenue":30.0}\n]'
