"""event log in its own SQLite file: move ``events``, ``subjects`` and ``person_keys`` to ``eventlog``

SQLite has one write lock per file; with the log beside the derived state, every append
waited for whichever consumer transaction held the lock (see :mod:`attune.storage.engine`).
PostgreSQL and in-memory SQLite databases keep one database: nothing to do there.

Later migrations that rebuild one of these tables must name the schema: SQLite's batch
mode would otherwise recreate the table in ``main``.

Revision ID: 0009
Revises: 0008
"""

import logging
import re

from alembic import op

log = logging.getLogger(__name__)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The tables that move: the log and what registering a new person in it writes (appends
#: register new people; they would wait for consumers again if either stayed behind).
TABLES = ("events", "subjects", "person_keys")
LOG_SCHEMA = "eventlog"


def _attached(bind) -> bool:
    return bind.dialect.name == "sqlite" and any(
        row[1] == LOG_SCHEMA for row in bind.exec_driver_sql("PRAGMA database_list")
    )


def _move(bind, table: str, source: str, target: str) -> None:
    """Recreate ``table`` (and its indexes) in schema ``target``, copy its rows, drop it in ``source``."""
    master = f"{source}.sqlite_master"
    ddl = bind.exec_driver_sql(f"SELECT sql FROM {master} WHERE type = 'table' AND name = ?", (table,)).scalar()
    if ddl is None:
        return  # not in source (already moved)
    indexes = bind.exec_driver_sql(
        f"SELECT sql FROM {master} WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
    ).scalars().all()
    bind.exec_driver_sql(re.sub(r"^CREATE TABLE\s+", f"CREATE TABLE {target}.", ddl, count=1))
    for index in indexes:
        bind.exec_driver_sql(re.sub(r"^CREATE (UNIQUE )?INDEX\s+", rf"CREATE \1INDEX {target}.", index, count=1))
    rows = bind.exec_driver_sql(f'SELECT count(*) FROM {source}."{table}"').scalar()
    if rows:  # a large log takes a while (once): say what is happening
        log.warning("moving %s rows of %s to the %s database file", f"{rows:,}", table, target)
    bind.exec_driver_sql(f'INSERT INTO {target}."{table}" SELECT * FROM {source}."{table}"')
    bind.exec_driver_sql(f'DROP TABLE {source}."{table}"')


def upgrade() -> None:
    bind = op.get_bind()
    if _attached(bind):
        for table in TABLES:
            _move(bind, table, "main", LOG_SCHEMA)


def downgrade() -> None:
    bind = op.get_bind()
    if _attached(bind):
        for table in TABLES:
            _move(bind, table, LOG_SCHEMA, "main")
