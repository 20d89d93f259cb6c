"""Hypothesis strategies for rule ASTs and for tables of values they read (rule tests only)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from attune.features.refs import FeatureRef
from attune.segments.rules.nodes import And, Between, Compare, Const, Expr, InSet, Not, Or, Truthy

VIEWS_7D = FeatureRef("count", event_type="view", window_seconds=7 * 86400.0)
DRAMA_30D = FeatureRef("count", event_type="view", window_seconds=30 * 86400.0, category="drama")
SPEND = FeatureRef("sum", event_type="purchase", field="value", window_seconds=30 * 86400.0)
DISTINCT = FeatureRef("distinct", event_type="view", window_seconds=3600.0)
ENGAGEMENT = FeatureRef("feature", name="engagement_score")
FREQUENCY_7D = FeatureRef("feature", name="frequency", window_seconds=7 * 86400.0)
AGE = FeatureRef("trait", name="age")
COUNTRY = FeatureRef("trait", name="country")
DEVICE = FeatureRef("context", name="device")
FANS = FeatureRef("segment", name="drama_fans")

NUMERIC_REFS = [VIEWS_7D, DRAMA_30D, SPEND, DISTINCT, ENGAGEMENT, FREQUENCY_7D, FANS]
FREE_REFS = [AGE, COUNTRY, DEVICE]
ALL_REFS = NUMERIC_REFS + FREE_REFS

#: Few distinct numbers, so data and constants often coincide (edges are where bugs live).
NUMBERS = [-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 18.0, 24.0, 100.0]
TEXTS = ["mobile", "desktop", "DE", "FR", 'q"uote', "back\\slash"]
numbers = st.sampled_from(NUMBERS) | st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
texts = st.sampled_from(TEXTS) | st.text(max_size=5)
ops = st.sampled_from(["==", "!=", ">", ">=", "<", "<="])


@st.composite
def _between(draw: Any, ref: FeatureRef) -> Between:
    a, b = draw(numbers), draw(numbers)
    return Between(ref, min(a, b), max(a, b))


def _numeric_leaf(ref: FeatureRef) -> st.SearchStrategy[Expr]:
    options = [
        st.builds(Compare, st.just(ref), ops, numbers),
        _between(ref),
        st.builds(InSet, st.just(ref), st.lists(numbers, min_size=1, max_size=3).map(tuple), st.booleans()),
    ]
    if ref.kind in ("count", "segment"):
        options.append(st.just(Truthy(ref)))
    return st.one_of(options)


def _free_leaf(ref: FeatureRef) -> st.SearchStrategy[Expr]:
    literal = numbers | texts | st.booleans()
    return st.one_of(
        _numeric_leaf(ref),
        st.builds(Compare, st.just(ref), st.sampled_from(["==", "!="]), texts | st.booleans()),
        st.builds(InSet, st.just(ref), st.lists(literal, min_size=1, max_size=3).map(tuple), st.booleans()),
    )


leaves = st.sampled_from(NUMERIC_REFS).flatmap(_numeric_leaf) | st.sampled_from(FREE_REFS).flatmap(_free_leaf)

exprs: st.SearchStrategy[Expr] = st.recursive(
    leaves | st.builds(Const, st.booleans()),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
    ),
    max_leaves=8,
)

#: Any value a feature store might hand over, wrong types included.
any_value = (
    st.none()
    | st.just(math.nan)
    | st.sampled_from(NUMBERS)
    | st.integers(-3, 30)
    | st.sampled_from(TEXTS)
    | st.booleans()
)


def as_column(values: list[Any]) -> np.ndarray:
    """The column a bulk loader would build: typed when it can be, object otherwise."""
    if all(type(v) is bool for v in values):
        return np.array(values, dtype=bool)
    if all(type(v) is int for v in values):
        return np.array(values, dtype=np.int64)
    if all(type(v) in (float, int) for v in values):
        return np.array(values, dtype=float)
    if all(type(v) is str for v in values):
        return np.array(values, dtype=str)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


@st.composite
def tables(draw: Any, rows: int = 12) -> tuple[list[dict[FeatureRef, Any]], dict[FeatureRef, np.ndarray]]:
    """Rows (ref → scalar) and the same data as columns; some refs are absent altogether."""
    n = draw(st.integers(1, rows))
    present = draw(st.lists(st.sampled_from(ALL_REFS), unique=True, max_size=len(ALL_REFS)))
    data = {ref: draw(st.lists(any_value, min_size=n, max_size=n)) for ref in present}
    row_dicts = [{ref: data[ref][i] for ref in present} for i in range(n)]
    return row_dicts, {ref: as_column(values) for ref, values in data.items()}


def people(ref: FeatureRef) -> st.SearchStrategy[Any]:
    """Values a real person can have for ``ref`` (domain respected: counts ≥ 0 integers, …)."""
    if ref.kind in ("count", "distinct"):
        return st.integers(0, 200).map(float)
    if ref.kind == "sum":
        return numbers
    if ref.kind == "segment":
        return st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 1)
    if ref.kind == "feature":
        return numbers | st.none()
    return numbers | texts | st.booleans() | st.none()
