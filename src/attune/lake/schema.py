"""The lake's event table: one explicit Arrow schema, so every Parquet file has the same columns.

The ``date`` column is not stored in the files: it is the hive partition directory
(``date=YYYY-MM-DD``, the UTC day of ``timestamp``) and DuckDB adds it when reading.
"""

from __future__ import annotations

import pyarrow as pa

UTC_MICROS = pa.timestamp("us", tz="UTC")

#: Columns of every part file, in file order.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("item_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("timestamp", UTC_MICROS, nullable=False),
        pa.field("received_at", UTC_MICROS, nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("device_type", pa.string()),
        pa.field("os", pa.string()),
        pa.field("browser", pa.string()),
        pa.field("country", pa.string()),
        pa.field("city", pa.string()),
        # The sender's IANA time zone (context.timezone): local hour and weekday offline.
        pa.field("timezone", pa.string()),
        pa.field("url", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("source", pa.string()),
        pa.field("properties", pa.string()),
        pa.field("traits", pa.string()),
    ]
)

#: Name of the hive partition column DuckDB derives from the directory names.
PARTITION_COLUMN = "date"

_DUCKDB_TYPES = {
    pa.int64(): "BIGINT",
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    UTC_MICROS: "TIMESTAMPTZ",
}


def duckdb_columns() -> list[tuple[str, str]]:
    """(name, DuckDB type) of the ``events`` view, partition column last, as DuckDB reads the lake."""
    columns = [(f.name, _DUCKDB_TYPES[f.type]) for f in EVENT_SCHEMA]
    columns.append((PARTITION_COLUMN, "DATE"))
    return columns
