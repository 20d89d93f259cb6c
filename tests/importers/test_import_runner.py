"""run_import end to end on the embedded store: every kind, every format, idempotency, rejections."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from attune.errors import BadRequest
from attune.importers import ImportResult, run_import
from attune.storage.tables import import_runs, interactions

INTERACTIONS_CSV = (
    "user_id,item_id,timestamp,value\n"
    "u1,i1,2024-01-01T00:00:00Z,4\n"
    "u1,i2,1704153600,5\n"
    "u2,i1,2024-01-03T00:00:00Z,\n"
)


def interaction_rows(runtime) -> list[tuple]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(interactions.c.user_key, interactions.c.item_id, interactions.c.type, interactions.c.value)
        ).all()
    return sorted(tuple(r) for r in rows)


def test_interactions_csv_lands_in_log_profiles_and_interactions(runtime, write):
    result = run_import(runtime, "interactions", write("r.csv", INTERACTIONS_CSV))
    assert isinstance(result, ImportResult)
    assert (result.rows, result.accepted, result.duplicates, result.rejected) == (3, 3, 0, 0)
    assert runtime.log.count() == 3
    assert interaction_rows(runtime) == [
        ("u:u1", "i1", "rating", 4.0),
        ("u:u1", "i2", "rating", 5.0),
        ("u:u2", "i1", "view", None),
    ]
    assert runtime.profiles.get("u1").event_counts == {"rating": 2}
    assert runtime.profiles.get("u2").event_counts == {"view": 1}
    events = [logged.event for logged in runtime.log.read(0, 10)]
    assert all(e.event_id.startswith("imp-") for e in events)
    assert all(e.context.get("source") == "import" for e in events)
    assert events[1].timestamp == 1704153600.0


def test_reimport_adds_nothing_and_reports_duplicates(runtime, write):
    path = write("r.csv", INTERACTIONS_CSV)
    first = run_import(runtime, "interactions", path)
    second = run_import(runtime, "interactions", path)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (second.rows, second.accepted, second.duplicates, second.rejected) == (3, 0, 3, 0)
    assert runtime.log.count() == 3
    assert runtime.profiles.get("u1").event_counts == {"rating": 2}
    assert "previously imported" in second.summary()
    assert "previously imported" not in first.summary()


def test_same_interactions_in_any_format_are_duplicates(runtime, write, tmp_path: Path):
    run_import(runtime, "interactions", write("r.csv", INTERACTIONS_CSV))
    jsonl = write(
        "r.jsonl",
        '{"user_id": "u1", "item_id": "i1", "timestamp": 1704067200, "value": 4}\n'
        '{"user_id": "u1", "item_id": "i2", "timestamp": "2024-01-02T00:00:00+00:00", "value": 5.0}\n'
        '{"user_id": "u2", "item_id": "i1", "timestamp": "2024-01-03T00:00:00Z"}\n',
    )
    parquet = tmp_path / "r.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["u1", "u1", "u2"],
                "item_id": ["i1", "i2", "i1"],
                "timestamp": pa.array([1704067200, 1704153600, 1704240000], pa.timestamp("s", tz="UTC")),
                "value": [4.0, 5.0, None],
            }
        ),
        parquet,
    )
    for path in (jsonl, parquet):
        result = run_import(runtime, "interactions", path)
        assert (result.accepted, result.duplicates, result.rejected) == (0, 3, 0), path.name
    assert runtime.log.count() == 3


def test_rejected_rows_carry_exact_lines_and_reasons(runtime, write, tmp_path: Path):
    long_id = "x" * 300
    long_note = "n" * 9000
    path = write(
        "r.csv",
        "user_id,item_id,timestamp,value,note\n"
        "u1,i1,2024-01-01T00:00:00Z,4,\n"  # 2 ok
        "u2,i2,2024-01-02T00:00:00Z,five,\n"  # 3 value not a number
        ",i3,2024-01-03T00:00:00Z,3,\n"  # 4 no user
        "u4,i4,1970-01-02T00:00:00Z,3,\n"  # 5 ancient
        f"{long_id},i5,2024-01-05T00:00:00Z,3,\n"  # 6 oversized id
        f"u6,i6,2024-01-06T00:00:00Z,3,{long_note}\n"  # 7 oversized string
        "u7,i7,yesterday,3,\n"  # 8 unreadable time
        'u8,i8,2024-01-08T00:00:00Z,,"a note\non two lines"\n'  # 9-10 ok, spans two lines
        "u9,i9,2024-01-09T00:00:00Z,\n"  # 11 one cell short
        "u10,i10,2024-01-10T00:00:00Z,2,\n",  # 12 ok
    )
    report = tmp_path / "out" / "rejected.csv"
    result = run_import(runtime, "interactions", path, report_path=report)
    assert (result.rows, result.accepted, result.rejected) == (10, 3, 7)
    lines = [r.line for r in result.rejections]
    assert lines == [3, 4, 5, 6, 7, 8, 11]
    by_line = dict(result.rejections)
    assert by_line[3] == ["value: 'five' is not a number"]
    assert by_line[4] == ["user_id: is required"]
    assert len(by_line[5]) == 1 and by_line[5][0].startswith("timestamp: 1970-01-02T00:00:00Z is before")
    assert by_line[6] == ["user_id: longer than 256 characters (300)"]
    assert by_line[7] == ["properties.note: longer than 8192 characters (9000)"]
    assert len(by_line[8]) == 1 and by_line[8][0].startswith("timestamp: 'yesterday' is neither ISO 8601")
    assert by_line[11] == ["row: has 4 cells but the header names 5 columns"]
    with report.open(newline="", encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["line", "reasons"]
    assert [(int(line), reasons) for line, reasons in written[1:]] == [
        (r.line, "; ".join(r.reasons)) for r in result.rejections
    ]
    assert "first rejected: line 3: value: 'five' is not a number" in result.summary()
    assert str(report) in result.summary()


def test_rejected_count_and_rejections_agree(runtime, write):
    path = write("r.csv", "user_id,item_id,timestamp\n,i1,1\nu2,,1\n")
    result = run_import(runtime, "interactions", path)
    assert result.rejected == len(result.rejections) == 2


def test_malformed_json_line_is_rejected_and_neighbours_land(runtime, write):
    path = write(
        "e.jsonl",
        '{"type": "view", "user_id": "u1", "item_id": "i1", "timestamp": 1704067200}\n'
        '{"type": "view", "user_id": "u1", "item_id": \n'
        '{"type": "view", "user_id": "u1", "item_id": "i2", "timestamp": 1704067300, "colour": "red"}\n'
        '{"type": "click", "anonymous_id": "d1", "item_id": "i3", "timestamp": 1704067400}\n',
    )
    result = run_import(runtime, "events", path)
    assert (result.rows, result.accepted, result.rejected) == (4, 2, 2)
    assert result.rejections[0].line == 2 and result.rejections[0].reasons[0].startswith(
        "line: is not valid JSON"
    )
    assert result.rejections[1] == (3, ["colour: unknown field"])
    assert runtime.log.count() == 2


def test_events_jsonl_keeps_given_ids_and_dedupes_on_them(runtime, write):
    path = write(
        "e.jsonl",
        '{"event_id": "e1", "type": "purchase", "user_id": "u1", "item_id": "i1", "value": 20, '
        '"timestamp": "2024-02-01T10:00:00Z", "properties": {"currency": "EUR"}}\n'
        '{"event_id": "e1", "type": "purchase", "user_id": "u1", "item_id": "i1", "value": 20}\n'
        '{"type": "identify", "user_id": "u1", "traits": {"plan": "pro"}}\n',
    )
    result = run_import(runtime, "events", path)
    assert (result.accepted, result.duplicates) == (2, 1)
    events = {logged.event.type: logged.event for logged in runtime.log.read(0, 10)}
    assert events["purchase"].event_id == "e1"
    assert events["purchase"].properties == {"currency": "EUR"}
    assert runtime.profiles.get("u1").traits["plan"] == "pro"
    again = run_import(runtime, "events", path)
    assert (again.accepted, again.duplicates) == (0, 3)


def test_events_csv_and_parquet_with_json_columns(runtime, write, tmp_path: Path):
    path = write(
        "e.csv",
        "type,user_id,anonymous_id,item_id,value,timestamp,properties,context\n"
        'search,u1,,,,2024-03-01T00:00:00Z,"{""query"": ""red shoes""}",\n'
        'page_view,,d9,,,2024-03-01T00:01:00Z,,"{""page"": {""url"": ""https://x.test/""}}"\n'
        'add_to_cart,u1,,i1,19.9,2024-03-01T00:02:00Z,"{not json",\n',
    )
    result = run_import(runtime, "events", path)
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.rejections[0].line == 4
    assert result.rejections[0].reasons[0].startswith("properties: is not valid JSON")
    logged = [entry.event for entry in runtime.log.read(0, 10)]
    assert logged[0].properties == {"query": "red shoes"}
    assert logged[1].anonymous_id == "d9" and logged[1].context["page"]["url"] == "https://x.test/"

    parquet = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "type": ["add_to_cart", "purchase"],
                "user_id": [1, 1],
                "item_id": ["i1", "i1"],
                "value": [19.9, 19.9],
                "timestamp": ["2024-03-01T00:02:00Z", "2024-03-01T00:05:00Z"],
                "properties": ['{"currency": "EUR"}', None],
            }
        ),
        parquet,
    )
    result = run_import(runtime, "events", parquet)
    assert (result.accepted, result.rejected) == (2, 0)
    assert runtime.profiles.get("1").event_counts == {"add_to_cart": 1, "purchase": 1}


def test_items_csv_with_genres_numbers_and_unicode(runtime, write):
    path = write(
        "items.csv",
        "item_id,title,genres,year,rating,available,description\n"
        'i1,Amélie,Comedy|Romance,2001,4.5,true,"Paris, Montmartre"\n'
        "i2,東京物語,Drama,1953,4.2,false,\n"
        ",No id,Drama,2000,1,true,\n"
        "i3,Heat,Crime|Drama,1995,4.1,perhaps,\n",
    )
    result = run_import(runtime, "items", path)
    assert (result.rows, result.items_upserted, result.rejected) == (4, 2, 2)
    assert result.rejections == [(4, ["item_id: is required"]), (5, ["available: must be true or false"])]
    first = runtime.catalog.get("i1").attributes
    assert first == {
        "title": "Amélie",
        "genres": ["Comedy", "Romance"],
        "year": 2001,
        "rating": 4.5,
        "available": True,
        "description": "Paris, Montmartre",
    }
    second = runtime.catalog.get("i2").attributes
    assert second["title"] == "東京物語" and second["genres"] == ["Drama"] and second["available"] is False
    assert "items upserted" in result.summary()
    again = run_import(runtime, "items", path)
    assert again.items_upserted == 2 and runtime.catalog.count() == 2


def test_items_jsonl_and_parquet_keep_their_types(runtime, write, tmp_path: Path):
    jsonl = write(
        "items.jsonl",
        '{"item_id": 10, "title": "Up", "genres": ["Animation"], "year": 2009}\n'
        '{"item_id": "11", "attributes": {"title": "Alien", "genres": "Horror|Sci-Fi"}}\n',
    )
    parquet = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["12"], "title": ["Jaws"], "genres": [["Thriller"]]}), parquet)
    assert run_import(runtime, "items", jsonl).items_upserted == 2
    assert run_import(runtime, "items", parquet).items_upserted == 1
    assert runtime.catalog.get("10").attributes == {"title": "Up", "genres": ["Animation"], "year": 2009}
    # the catalog splits pipe text into a list, as the items API does
    assert runtime.catalog.get("11").attributes["genres"] == ["Horror", "Sci-Fi"]
    assert runtime.catalog.get("12").attributes["genres"] == ["Thriller"]


def test_users_traits_land_in_profiles_and_reimport_is_duplicate(runtime, write):
    path = write(
        "users.csv",
        "user_id,age,country,zip,newsletter,name\n007,34,DE,01067,true,Zoë\nu2,19,FR,,false,Łukasz\n",
    )
    result = run_import(runtime, "users", path)
    assert (result.accepted, result.rejected) == (2, 0)
    profile = runtime.profiles.get("007")
    assert profile.traits == {"age": 34, "country": "DE", "zip": "01067", "newsletter": True, "name": "Zoë"}
    assert profile.trait_sources["age"]["source"] == "import"
    assert runtime.profiles.get("u2").traits == {
        "age": 19,
        "country": "FR",
        "newsletter": False,
        "name": "Łukasz",
    }
    again = run_import(runtime, "users", path)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert runtime.log.count() == 2


def test_unicode_ids_in_interactions(runtime, write):
    path = write("r.csv", "user_id,item_id,timestamp\nzoë,café-☕,1704067200\n")
    result = run_import(runtime, "interactions", path)
    assert result.accepted == 1
    assert runtime.profiles.get("zoë").recent_interactions[0]["item_id"] == "café-☕"


def test_missing_column_fails_fast_naming_it(runtime, write):
    path = write("r.csv", "userId,item_id,timestamp\n1,2,3\n")
    with pytest.raises(BadRequest) as caught:
        run_import(runtime, "interactions", path)
    assert "no 'user_id' column" in caught.value.message
    assert "userId, item_id, timestamp" in caught.value.message
    assert runtime.log.count() == 0


def test_missing_timestamp_column_fails_fast(runtime, write):
    with pytest.raises(BadRequest, match="no 'timestamp' column"):
        run_import(runtime, "interactions", write("r.csv", "user_id,item_id\nu1,i1\n"))


def test_unknown_format_and_kind_and_missing_file(runtime, write, tmp_path: Path):
    with pytest.raises(BadRequest, match="cannot tell the format"):
        run_import(runtime, "interactions", write("r.xml", "<r/>"))
    with pytest.raises(BadRequest, match="unknown import kind"):
        run_import(runtime, "ratings", write("r.csv", INTERACTIONS_CSV))
    with pytest.raises(BadRequest, match="is not a file"):
        run_import(runtime, "events", tmp_path / "absent.jsonl")


def test_each_run_is_recorded(runtime, write):
    path = write("r.csv", INTERACTIONS_CSV + ",i9,1704067200,1\n")
    first = run_import(runtime, "interactions", path)
    second = run_import(runtime, "interactions", path)
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(
                import_runs.c.run_id,
                import_runs.c.kind,
                import_runs.c.source,
                import_runs.c.accepted,
                import_runs.c.duplicates,
                import_runs.c.rejected,
                import_runs.c.finished_at,
            ).order_by(import_runs.c.started_at)
        ).all()
    assert [(r.run_id, r.kind, r.accepted, r.duplicates, r.rejected) for r in rows] == [
        (first.run_id, "interactions", 3, 0, 1),
        (second.run_id, "interactions", 0, 3, 1),
    ]
    assert all(r.source == str(path.resolve()) and r.finished_at is not None for r in rows)
    assert second.previous is not None and second.previous.accepted == 3


def test_progress_works_without_a_terminal(runtime, write, capsys):
    result = run_import(runtime, "interactions", write("r.csv", INTERACTIONS_CSV), progress=True)
    assert result.accepted == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "interactions" in captured.err and "catching up" in captured.err


def test_summary_is_one_line_with_the_counts(runtime, write):
    result = run_import(runtime, "interactions", write("r.csv", INTERACTIONS_CSV))
    summary = result.summary()
    assert "\n" not in summary
    assert (
        "3 rows" in summary
        and "3 accepted" in summary
        and "0 duplicates" in summary
        and "0 rejected" in summary
    )


def test_chunks_larger_than_one_batch_are_all_imported(runtime, write):
    n = 12_345
    body = "".join(f"u{i % 97},i{i % 501},{1704067200 + i}\n" for i in range(n))
    result = run_import(runtime, "interactions", write("r.csv", "user_id,item_id,timestamp\n" + body))
    assert (result.rows, result.accepted) == (n, n)
    assert runtime.log.count() == n
    assert sum(runtime.profiles.get(f"u{u}").event_counts["view"] for u in range(97)) == n


def test_json_lines_of_interactions_reject_rows_missing_fields(runtime, write):
    path = write(
        "r.jsonl",
        orjson.dumps({"user_id": "u1", "item_id": "i1", "timestamp": 1704067200}).decode()
        + "\n"
        + orjson.dumps({"user_id": "u1", "timestamp": 1704067200}).decode()
        + "\n",
    )
    result = run_import(runtime, "interactions", path)
    assert result.accepted == 1
    assert result.rejections == [(2, ["item_id: is required"])]


def test_repeated_item_id_in_one_file_keeps_the_last_row(runtime, write):
    path = write("items.csv", "item_id,title\ni1,First\ni2,Other\ni1,Second\n")
    result = run_import(runtime, "items", path)
    assert (result.rows, result.items_upserted) == (3, 2)
    assert runtime.catalog.get("i1").attributes == {"title": "Second"}


@pytest.mark.parametrize("name", ["e.json", "e.ndjson"])
def test_json_and_ndjson_extensions_are_json_lines(runtime, write, name):
    path = write(name, '{"type": "view", "user_id": "u1", "item_id": "i1", "timestamp": 1704067200}\n')
    assert run_import(runtime, "events", path).accepted == 1


def test_parquet_progress_works_without_a_terminal(runtime, tmp_path: Path, capsys):
    path = tmp_path / "users.parquet"
    pq.write_table(pa.table({"user_id": ["u1", "u2"], "age": [30, None]}), path)
    result = run_import(runtime, "users", path, progress=True)
    assert result.accepted == 2
    assert runtime.profiles.get("u1").traits == {"age": 30}
    assert runtime.profiles.get("u2").traits == {}
    assert "users" in capsys.readouterr().err


def test_unwritable_report_path_is_a_clear_error(runtime, write, tmp_path: Path):
    blocker = write("blocker", "a file, not a folder")
    with pytest.raises(BadRequest, match="cannot write the report to"):
        run_import(runtime, "interactions", write("r.csv", INTERACTIONS_CSV), report_path=blocker / "r.csv")
