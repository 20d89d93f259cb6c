"""Privacy fixtures: a runtime with privacy installed (optionally pseudonymizing) and its client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from attune.api.app import create_app
from attune.privacy.services import Privacy
from attune.runtime import Runtime
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade


@pytest.fixture
def engine(store_url: str):  # noqa: ANN201 - yields an Engine
    """A migrated, empty store of the backend under test (SQLite and PostgreSQL)."""
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def private_runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime with pseudonymization on (the privacy step is part of every runtime's ingestion)."""
    return make_runtime(privacy={"pseudonymize": True}, lake={"flush_events": 1})


@pytest.fixture
def privacy(private_runtime: Runtime) -> Privacy:
    """The privacy services of ``private_runtime``."""
    return private_runtime.privacy


@pytest.fixture
def private_client(private_runtime: Runtime) -> Iterator[TestClient]:
    """An admin client over ``private_runtime`` (consumers running)."""
    _, secret = private_runtime.keys.create(frozenset({"admin"}), name="admin")
    with TestClient(create_app(private_runtime), headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client
