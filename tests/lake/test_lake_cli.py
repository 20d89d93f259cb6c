"""``attune sql``: results on stdout, clean errors for bad SQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from attune.cli.main import app

EVENTS = [
    {"type": "view", "user_id": "u1", "item_id": "A", "timestamp": "2024-03-05T08:00:00Z"},
    {"type": "view", "user_id": "u2", "item_id": "A", "timestamp": "2024-03-05T09:00:00Z"},
    {"type": "view", "user_id": "u2", "item_id": "B", "timestamp": "2024-03-06T09:00:00Z"},
]


def sql(settings, query: str, *options: str):
    """Invoke ``attune sql`` on the test installation."""
    return CliRunner().invoke(app, ["sql", query, "--data-dir", str(settings.data_dir), *options])


def test_sql_prints_json_results(settings, ingest):
    ingest(EVENTS)
    result = sql(
        settings,
        "SELECT CAST(date AS VARCHAR) AS day, item_id, views FROM daily_item_stats ORDER BY day, item_id",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"day": "2024-03-05", "item_id": "A", "views": 2},
        {"day": "2024-03-06", "item_id": "B", "views": 1},
    ]


def test_sql_prints_a_table_by_default(settings, ingest):
    ingest(EVENTS)
    result = sql(settings, "SELECT user_id, count(*) AS n FROM events GROUP BY user_id ORDER BY user_id")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "u1" in line or "u2" in line]
    assert [[cell.strip() for cell in line.strip("│ ").split("│")] for line in lines] == [
        ["u1", "1"],
        ["u2", "2"],
    ]
    assert "2 rows" in result.stderr


def test_bad_sql_is_one_clean_error_line(settings):
    result = sql(settings, "SELEC * FROM events")
    assert result.exit_code == 1
    assert "error:" in result.stderr and "SQL error" in result.stderr and "SELEC" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_unknown_table_names_the_table(settings):
    result = sql(settings, "SELECT * FROM no_such_view", "--format", "csv")
    assert result.exit_code == 1
    assert "no_such_view" in result.stderr
    assert "Traceback" not in result.output


def test_sql_on_an_empty_installation_prints_no_rows(settings):
    result = sql(settings, "SELECT count(*) AS n FROM events", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "n\n0\n"


def test_error_quoting_brackets_from_the_query_prints_them_verbatim(settings):
    # DuckDB echoes the query in parser errors; "[/b]" must not be taken for rich markup.
    result = sql(settings, "SELEC '[/b]' FROM events")
    assert result.exit_code == 1
    assert "[/b]" in result.stderr
    assert "Traceback" not in result.output
