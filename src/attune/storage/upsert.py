"""Dialect-aware INSERT … ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def _insert(conn: Connection, table: Table):
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    increment: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict overwrite the other columns, or add for ``increment`` ones."""
    if not rows:
        return
    stmt = _insert(conn, table)
    updates = {}
    for column in rows[0]:
        if column in keys:
            continue
        if column in increment:
            updates[column] = table.c[column] + stmt.excluded[column]
        else:
            updates[column] = stmt.excluded[column]
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    conn.execute(stmt, list(rows))


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, silently keeping existing rows with the same primary key."""
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(), list(rows))
