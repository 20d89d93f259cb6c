"""Fixtures of the serving tests (the shop itself is described in ``serving_shop.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from serving_shop import build_shop

from attune.runtime import Runtime


@pytest.fixture(params=["ease", "als"])
def shop(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    """The shop over each store, with each kind of model (item-based EASE, factor ALS)."""
    runtime = make_runtime(serving={"min_group_size": 5})
    return build_shop(runtime, request.param)


@pytest.fixture
def private_shop(make_runtime: Callable[..., Runtime]) -> Runtime:
    """The shop on a pseudonymized installation (trait values sealed at rest), with EASE."""
    runtime = make_runtime(serving={"min_group_size": 5}, privacy={"pseudonymize": True})
    return build_shop(runtime, "ease")
