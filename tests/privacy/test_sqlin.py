"""Lookups of many keys at once (``attune.privacy.sqlin``), on both stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert

from attune.privacy.sqlin import CHUNK, select_in
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade
from attune.storage.tables import items


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(items),
            [{"item_id": f"i{n}", "attributes": {"n": n}, "updated_at": float(n)} for n in range(50)],
        )
    yield engine
    engine.dispose()


def test_finds_exactly_the_rows_of_the_keys_given(engine: Engine) -> None:
    # More keys than one statement takes on SQLite, most of them unknown.
    keys = [f"i{n}" for n in range(0, 50, 7)] + [f"missing{n}" for n in range(CHUNK + 10)]
    with engine.connect() as conn:
        rows = sorted(select_in(conn, items, ["item_id", "updated_at"], "item_id", keys))
    assert rows == sorted((f"i{n}", float(n)) for n in range(0, 50, 7))
    with engine.connect() as conn:
        assert list(select_in(conn, items, ["item_id"], "item_id", [])) == []


def test_lookups_are_never_prepared_on_postgresql(engine: Engine) -> None:
    """A prepared lookup soon runs a generic plan that compares every row with every key."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only psycopg prepares statements")
    with engine.connect() as conn:
        for n in range(8):  # psycopg prepares a statement on its fifth run
            assert len(list(select_in(conn, items, ["item_id"], "item_id", [f"i{n}"]))) == 1
        prepared = [row[0] for row in conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")]
    assert not any("ANY(" in statement for statement in prepared), prepared
