"""SQL over the lake with DuckDB: the ``events`` view, the data marts, and ``attune sql`` output.

Queries run in a fresh in-memory DuckDB that only reads the Parquet files; the SQL store is
never attached, so nothing a query does can touch the installation's state.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb
import orjson
import pyarrow as pa

from attune.errors import BadRequest
from attune.lake.layout import events_dir
from attune.lake.marts import MARTS
from attune.lake.schema import duckdb_columns
from attune.settings import Settings

FORMATS = ("table", "csv", "json")
#: Rows shown by the table format; csv and json print every row.
TABLE_ROW_LIMIT = 1000
_BATCH_ROWS = 10_000
_MAX_PIPED_WIDTH = 100_000
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with ``events`` and every mart registered as views.

    ``events`` has the columns of :data:`attune.lake.schema.EVENT_SCHEMA` plus ``date`` (the
    UTC day, from the ``date=…`` directories). Note that ``offset`` is an SQL keyword and must
    be quoted: ``SELECT "offset" FROM events``. The session time zone is UTC so timestamps
    print and truncate to days the same way the partitions were cut. Fetch results through
    Arrow (``con.sql(q).to_arrow_table()``): DuckDB's ``fetchall`` turns TIMESTAMPTZ values
    into Python objects only with ``pytz``, which Attune does not depend on.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(events_view_sql(settings.lake_dir))
        for mart in MARTS:
            con.execute(mart.create_sql())
            con.execute(mart.comment_sql())
    except BaseException:
        con.close()
        raise
    return con


def events_view_sql(lake_dir: Path) -> str:
    """``CREATE VIEW events``: over the part files, or an empty view of the same shape when none exist."""
    root = events_dir(lake_dir)
    if _has_parts(root):
        pattern = _sql_string(f"{root.resolve().as_posix()}/**/*.parquet")
        return (
            "CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet("
            f"{pattern}, hive_partitioning = true, union_by_name = true, hive_types = {{'date': DATE}})"
        )
    columns = ", ".join(f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in duckdb_columns())
    return f"CREATE OR REPLACE VIEW events AS SELECT {columns} WHERE false"


def print_query(settings: Settings, sql: str, fmt: str, out: TextIO | None = None) -> None:
    """Run ``sql`` over the lake and print the result as a rich table, CSV or JSON (to stdout).

    SQL errors become :class:`~attune.errors.BadRequest` carrying DuckDB's message.
    """
    if fmt not in FORMATS:
        raise BadRequest(f"--format: must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if not sql.strip():
        raise BadRequest("query: must not be empty")
    out = out or sys.stdout
    con = connect(settings)
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result, such as SET
            return
        columns = list(relation.columns)
        numeric = [str(kind).startswith(_NUMERIC_TYPES) for kind in relation.types]
        batches = _rows(relation.to_arrow_reader(_BATCH_ROWS))
        if fmt == "table":
            _print_table(columns, numeric, batches, out)
        elif fmt == "csv":
            _print_csv(columns, batches, out)
        else:
            _print_json(columns, batches, out)
    except duckdb.Error as exc:
        raise BadRequest(f"SQL error: {exc}") from None
    except pa.ArrowException as exc:  # a DuckDB type with no Python form (rare: UNION, BIT…)
        raise BadRequest(f"cannot print the result: {exc}; cast the column to VARCHAR") from None
    finally:
        con.close()


def _has_parts(root: Path) -> bool:
    return root.is_dir() and next(root.glob("*/*.parquet"), None) is not None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rows(reader: pa.RecordBatchReader) -> Iterator[tuple[Any, ...]]:
    for batch in reader:
        columns = [column.to_pylist() for column in batch.columns]
        yield from zip(*columns, strict=True)


def _print_table(
    columns: list[str], numeric: list[bool], rows: Iterator[tuple[Any, ...]], out: TextIO
) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(header_style="bold")
    for name, is_number in zip(columns, numeric, strict=True):
        table.add_column(
            name, no_wrap=True, min_width=min(len(name), 10), justify="right" if is_number else "left"
        )
    shown = 0
    more = False
    for row in rows:
        if shown == TABLE_ROW_LIMIT:
            more = True
            break
        table.add_row(*(_cell(value) for value in row))
        shown += 1
    console = Console(file=out)
    if not console.is_terminal:
        # Piped or captured output has no screen to fit: show every value whole, like psql does.
        width = Measurement.get(console, console.options.update(width=_MAX_PIPED_WIDTH), table).maximum
        console = Console(file=out, width=max(width, 20))
    console.print(table)
    note = f"{shown} row{'s' if shown != 1 else ''}"
    if more:
        note = f"first {TABLE_ROW_LIMIT} rows shown; use --format csv or json for all, or add LIMIT"
    Console(stderr=True).print(f"[dim]{note}[/dim]")


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/dim]"
    text = _scalar_text(value)
    # Cell text is markup to rich; escape so "[x]" in data prints as is.
    from rich.markup import escape

    return escape(text)


def _print_csv(columns: list[str], rows: Iterator[tuple[Any, ...]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else _scalar_text(value) for value in row])


def _print_json(columns: list[str], rows: Iterator[tuple[Any, ...]], out: TextIO) -> None:
    out.write("[")
    first = True
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        out.write(("\n" if first else ",\n") + orjson.dumps(record, default=_json_default).decode())
        first = False
    out.write("\n]\n" if not first else "]\n")


def _scalar_text(value: Any) -> str:
    """One value as text: ISO 8601 for times, JSON for nested values, ``str`` otherwise."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=_json_default).decode()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # DuckDB sums integers into HUGEINT, which Arrow carries as a scale-0 decimal: keep it an integer.
        return int(value) if value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
