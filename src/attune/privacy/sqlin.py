"""``SELECT … WHERE column IN (…)`` over many keys, straight to the driver.

Privacy looks up a whole ingest batch at once (consent of 1,000 subjects, their data keys).
SQLAlchemy's expanding ``IN`` parameters cost about 10 µs per key to render, more than the
query itself, so these lookups render plain placeholders once per chunk size instead. Values
come back as the driver gives them (``bytes`` for binary columns on both dialects).

On PostgreSQL such lookups (``= ANY(array)``, here, in the log's dedupe and in the profiles
consumer) run with ``prepare=False``: psycopg prepares a query on its fifth run, and
PostgreSQL soon keeps a generic plan for it, made without the array. Such a plan cannot hash
the array, and while the table is young it scans it, so every row was compared with every
key (the log's dedupe of 1,000 ids after ten single-event appends: 110 ms instead of 4).
Planned per call, a lookup hashes the keys or uses the index, whichever the table calls for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table

#: Keys per statement: well under SQLite's bound-parameter limit.
CHUNK = 900


@lru_cache(maxsize=128)
def _sql(paramstyle: str, table: str, columns: tuple[str, ...], key_column: str, count: int) -> str:
    """The lookup statement; paramstyle ``any``: PostgreSQL's ``= ANY(%s)`` over one array."""
    names = ", ".join(f'"{c}"' for c in columns)
    head = f'SELECT {names} FROM "{table}" WHERE "{key_column}"'
    if paramstyle == "any":
        return f"{head} = ANY(%s)"
    marker = "?" if paramstyle == "qmark" else "%s"
    return f'{head} IN ({", ".join([marker] * count)})'


def select_in(
    conn: Connection, table: Table, columns: Sequence[str], key_column: str, keys: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Rows (``columns`` of ``table``) whose ``key_column`` is one of ``keys``."""
    names = tuple(table.c[c].name for c in columns)  # KeyError for a column the table lacks
    key_name = table.c[key_column].name
    if conn.dialect.name == "postgresql":
        # One array parameter: psycopg parses a statement with hundreds of placeholders anew
        # on every call (7.1 vs 5.7 ms per 1,000 consent lookups).
        if keys:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(_sql("any", table.name, names, key_name, 0), (list(keys),), prepare=False)
                yield from cursor.fetchall()
            finally:
                cursor.close()
        return
    for start in range(0, len(keys), CHUNK):
        chunk = tuple(keys[start : start + CHUNK])
        sql = _sql(conn.dialect.paramstyle, table.name, names, key_name, len(chunk))
        yield from conn.exec_driver_sql(sql, chunk)
