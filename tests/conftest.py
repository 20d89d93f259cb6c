"""Shared fixtures: one store URL per backend, a runtime over it, an HTTP client and API keys.

``store_url`` runs every test that uses it (directly or through ``runtime``/``client``)
against the embedded SQLite store and the real PostgreSQL server. PostgreSQL gets one fresh
database per test session; its tables are emptied before each test. When the server is
unreachable the PostgreSQL variants are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from attune.api.app import create_app
from attune.runtime import Runtime
from attune.settings import load_settings

#: libpq connection string of the maintenance database used to create the test database.
PG_ADMIN_DSN = os.environ.get(
    "ATTUNE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
)


def _pg_params() -> dict[str, Any]:
    return psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)


def pg_url(database: str, **query: str) -> str:
    """SQLAlchemy URL of ``database`` on the test server (extra ``query`` becomes URL parameters)."""
    params = _pg_params()
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    url = f"postgresql://{user}@{host}:{port}/{database}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def pg_connect(database: str | None = None) -> psycopg.Connection:
    """An autocommit psycopg connection to ``database`` (the maintenance database by default)."""
    params = _pg_params()
    if database is not None:
        params["dbname"] = database
    return psycopg.connect(**params, autocommit=True)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this test session (dropped at the end)."""
    try:
        admin = pg_connect()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is unreachable at {PG_ADMIN_DSN!r}: {str(exc).strip()[:200]}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the PostgreSQL tests must run)", pytrace=False)
        pytest.skip(reason)
    name = f"attune_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield name
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def truncate_all(database: str) -> None:
    """Empty every table except Alembic's bookkeeping and restart the offset sequences.

    DELETE is used rather than TRUNCATE: on a handful of tiny tables it is ten times faster.
    """
    with pg_connect(database) as conn:
        # A leaked connection holding a lock must fail the test, not hang the suite.
        conn.execute("SET lock_timeout = '10s'")
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
        sequences = conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        ).fetchall()
        statements = [sql.SQL("SET session_replication_role = replica")]  # skip foreign-key checks
        statements += [sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for (t,) in tables]
        statements += [sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(q)) for (q,) in sequences]
        conn.execute(sql.SQL("; ").join(statements))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with an empty store: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    database = request.getfixturevalue("pg_database")
    truncate_all(database)
    return pg_url(database)


@pytest.fixture
def make_runtime(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Runtime]]:
    """Open runtimes over ``store_url`` with extra settings (``profiles={...}``); all closed after."""
    opened: list[Runtime] = []

    def factory(**overrides: Any) -> Runtime:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("database_url", store_url)
        runtime = Runtime.open(load_settings(**overrides))
        opened.append(runtime)
        return runtime

    yield factory
    for runtime in reversed(opened):
        runtime.close()


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime with default settings over ``store_url``."""
    return make_runtime()


@pytest.fixture
def keys(runtime: Runtime) -> dict[str, str]:
    """Secrets of three keys, one per scope: ``ingest``, ``read`` and ``admin``."""
    return {
        scope: runtime.keys.create(frozenset({scope}), name=f"test-{scope}")[1]
        for scope in ("ingest", "read", "admin")
    }


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def auth(keys: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """``auth("read")``: the ``Authorization`` header of the key with that one scope."""
    return lambda scope: _bearer(keys[scope])


@pytest.fixture
def client(runtime: Runtime, keys: dict[str, str]) -> Iterator[TestClient]:
    """A test client over the app with consumers running; sends the admin key unless told otherwise.

    ``client.admin_key`` holds that key's secret.
    """
    with TestClient(create_app(runtime), headers=_bearer(keys["admin"])) as test_client:
        test_client.admin_key = keys["admin"]  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture
def parity_checkerboard_csv(tmp_path: Path) -> Path:
    """An interactions CSV where user uN saw 8 of the 10 items iMM with M of N's parity.

    Every personalized model must recommend the two unseen items of the user's parity first.
    """
    import numpy as np

    path = tmp_path / "interactions.csv"
    rng = np.random.default_rng(0)
    with path.open("w") as handle:
        handle.write("user_id,item_id,timestamp\n")
        t = 1_700_000_000
        for u in range(40):
            for i in rng.permutation([i for i in range(20) if i % 2 == u % 2])[:8]:
                t += 60
                handle.write(f"u{u},i{int(i):02d},{t}\n")
    return path
