"""Readers: formats by extension, line numbers, chunking, unreadable rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attune.errors import BadRequest
from attune.importers.mapping import InteractionsMapper
from attune.importers.readers import CHUNK_ROWS, SourceRow, open_source


def read_all(path: Path, headerless=None) -> tuple[list[str] | None, list[SourceRow]]:
    source = open_source(path, headerless)
    try:
        rows = [row for chunk, _ in source.chunks() for row in chunk]
        return source.columns, rows
    finally:
        source.close()


def test_csv_line_numbers_are_physical_lines_where_each_record_starts(write):
    path = write(
        "items.csv",
        'item_id,title\n1,"A title\nspread over two lines"\n\n2,Plain\n',
    )
    columns, rows = read_all(path)
    assert columns == ["item_id", "title"]
    assert [(r.line, r.values) for r in rows] == [
        (2, {"item_id": "1", "title": "A title\nspread over two lines"}),
        (5, {"item_id": "2", "title": "Plain"}),
    ]
    assert all(r.text for r in rows)


def test_csv_empty_cells_are_absent_and_cells_are_trimmed(write):
    path = write("u.csv", "user_id,age,city\n u1 ,, Berlin \n")
    _, rows = read_all(path)
    assert rows[0].values == {"user_id": "u1", "city": "Berlin"}


def test_csv_byte_order_mark_is_not_part_of_the_first_column(write):
    path = write("u.csv", "\ufeffuser_id,age\nu1,3\n")
    columns, _ = read_all(path)
    assert columns == ["user_id", "age"]


def test_csv_row_with_wrong_number_of_cells_is_rejected_with_its_line(write):
    path = write("u.csv", "user_id,age\nu1,3\nu2,4,extra\nu3,5\n")
    _, rows = read_all(path)
    assert [(r.line, r.error) for r in rows] == [
        (2, None),
        (3, "row: has 3 cells but the header names 2 columns"),
        (4, None),
    ]


def test_csv_line_that_is_not_utf8_is_rejected(tmp_path: Path):
    path = tmp_path / "u.csv"
    path.write_bytes(b"user_id,name\nu1,ok\nu2,caf\xe9\nu3,fine\n")
    _, rows = read_all(path)
    assert [(r.line, r.error) for r in rows] == [(2, None), (3, "row: is not valid UTF-8 text"), (4, None)]


def test_tsv_and_data_files_are_tab_separated(write):
    for name in ("x.tsv", "x.data"):
        columns, rows = read_all(write(name, "user_id\titem_id\na,b\tc\n"))
        assert columns == ["user_id", "item_id"]
        assert rows[0].values == {"user_id": "a,b", "item_id": "c"}


def test_headerless_interactions_take_movielens_columns(write):
    path = write("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    source = open_source(path, InteractionsMapper().headerless)
    try:
        rows = [row for chunk, _ in source.chunks() for row in chunk]
        assert source.columns == ["user_id", "item_id", "value", "timestamp"]
        assert "headerless" in source.layout
    finally:
        source.close()
    assert [r.line for r in rows] == [1, 2]
    assert rows[0].values == {"user_id": "196", "item_id": "242", "value": "3", "timestamp": "881250949"}


def test_a_header_row_is_not_mistaken_for_data(write):
    path = write("i.tsv", "user_id\titem_id\ttimestamp\n1\t2\t881250949\n")
    columns, rows = read_all(path, InteractionsMapper().headerless)
    assert columns == ["user_id", "item_id", "timestamp"]
    assert [r.line for r in rows] == [2]


def test_repeated_header_name_is_refused(write):
    with pytest.raises(BadRequest, match="names column 'a' twice"):
        open_source(write("x.csv", "a,b,a\n1,2,3\n"))


def test_empty_csv_is_refused(write):
    with pytest.raises(BadRequest, match="is empty"):
        open_source(write("x.csv", ""))


def test_json_lines_numbers_malformed_lines_and_non_objects(write):
    path = write(
        "e.jsonl",
        '{"type": "view", "user_id": "u1"}\n'
        "\n"
        '{"type": "view", "user_id": \n'
        "[1, 2]\n"
        '{"type": "click", "user_id": "u2", "value": null}\n',
    )
    columns, rows = read_all(path)
    assert columns is None
    assert rows[0].line == 1 and rows[0].values == {"type": "view", "user_id": "u1"}
    assert rows[1].line == 3 and rows[1].values is None
    assert rows[1].error is not None and rows[1].error.startswith("line: is not valid JSON (")
    assert (rows[2].line, rows[2].error) == (4, "line: must be a JSON object, not an array")
    # null is absent, as an empty CSV cell is
    assert (rows[3].line, rows[3].values) == (5, {"type": "click", "user_id": "u2"})
    assert rows[3].text is False


def test_json_array_file_is_refused_with_a_way_out(write):
    with pytest.raises(BadRequest, match="JSON array.*jq -c"):
        open_source(write("e.json", '[{"type": "view"}]\n'))


def test_parquet_rows_are_numbered_from_one_and_read_in_chunks(tmp_path: Path):
    n = CHUNK_ROWS * 2 + 7
    table = pa.table(
        {"user_id": [f"u{i}" for i in range(n)], "value": [None if i == 3 else i for i in range(n)]}
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=3000)
    source = open_source(path)
    try:
        chunks = list(source.chunks())
        assert source.columns == ["user_id", "value"]
        assert source.total == n and source.unit == "rows"
    finally:
        source.close()
    assert [len(rows) for rows, _ in chunks] == [advance for _, advance in chunks]
    assert sum(len(rows) for rows, _ in chunks) == n
    assert all(len(rows) <= CHUNK_ROWS for rows, _ in chunks)
    rows = [row for chunk, _ in chunks for row in chunk]
    assert [r.line for r in rows] == list(range(1, n + 1))
    assert rows[3].values == {"user_id": "u3"}
    assert rows[4].values == {"user_id": "u4", "value": 4}


def test_large_csv_is_read_in_chunks_with_byte_progress(write):
    n = CHUNK_ROWS + 10
    path = write("big.csv", "user_id,item_id\n" + "".join(f"u{i},i{i}\n" for i in range(n)))
    source = open_source(path)
    try:
        chunks = list(source.chunks())
    finally:
        source.close()
    assert [len(rows) for rows, _ in chunks] == [CHUNK_ROWS, 10]
    # Progress is counted in bytes, header included, so the bar ends at the file size.
    assert sum(advance for _, advance in chunks) == path.stat().st_size


def test_unknown_extension_is_refused_naming_the_formats(write):
    with pytest.raises(BadRequest, match=r"\.xlsx.*\.csv.*\.jsonl.*\.parquet"):
        open_source(write("x.xlsx", "a"))


def test_file_that_is_not_parquet_is_refused(write):
    with pytest.raises(BadRequest, match="not a readable Parquet file"):
        open_source(write("x.parquet", "user_id\nu1\n"))


def test_unclosed_quote_is_reported_with_the_lines_it_swallowed(write):
    path = write("r.csv", 'user_id,item_id,timestamp\nu1,i1,1\nu2,"i2,1\nu3,i3,1\n')
    _, rows = read_all(path)
    assert [(r.line, r.error) for r in rows] == [
        (2, None),
        (3, "row: has 2 cells but the header names 3 columns (it runs on to line 4: is a quote left open?)"),
    ]
