"""Evaluating rules: known answers, missing values, and scalar ≡ vectorized (Hypothesis)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from rule_strategies import AGE, COUNTRY, DEVICE, ENGAGEMENT, FANS, SPEND, VIEWS_7D, exprs, tables

from attune.features.refs import FeatureRef
from attune.segments.rules import And, Not, Or, evaluate, parse_rule, rule_from_expr

DRAMA_7D = FeatureRef("count", "view", window_seconds=7 * 86400.0, category="drama")
PURCHASES_30D = FeatureRef("count", "purchase", window_seconds=30 * 86400.0)


def test_design_examples_on_known_people() -> None:
    drama = parse_rule('count(view, window=7d, category="drama") > 3 and trait.age between 18 and 24')
    assert evaluate(drama, {DRAMA_7D: 4, AGE: 18}) is True
    assert evaluate(drama, {DRAMA_7D: 4, AGE: 24.0}) is True
    assert evaluate(drama, {DRAMA_7D: 3, AGE: 20}) is False
    assert evaluate(drama, {DRAMA_7D: 9, AGE: 25}) is False

    spenders = parse_rule("sum(purchase.value, window=30d) >= 100 or engagement_score >= 0.7")
    assert evaluate(spenders, {SPEND: 100.0, ENGAGEMENT: 0.1}) is True
    assert evaluate(spenders, {SPEND: 5.0, ENGAGEMENT: 0.7}) is True
    assert evaluate(spenders, {SPEND: 99.99, ENGAGEMENT: 0.69}) is False

    mobile = parse_rule('context.device == "mobile" and not exists(purchase, window=30d)')
    assert evaluate(mobile, {DEVICE: "mobile", PURCHASES_30D: 0}) is True
    assert evaluate(mobile, {DEVICE: "mobile", PURCHASES_30D: 1}) is False
    assert evaluate(mobile, {DEVICE: "desktop", PURCHASES_30D: 0}) is False

    fans = parse_rule('segment("drama_fans") and trait.country in ("DE", "FR")')
    assert evaluate(fans, {FANS: 0.4, COUNTRY: "FR"}) is True
    assert evaluate(fans, {FANS: 0.0, COUNTRY: "FR"}) is False
    assert evaluate(fans, {FANS: 1.0, COUNTRY: "US"}) is False


@pytest.mark.parametrize("missing", ["absent", None, math.nan, np.float64("nan")])
def test_missing_values_make_comparisons_false_and_their_negation_true(missing: Any) -> None:
    def values(**extra: Any) -> dict[FeatureRef, Any]:
        return {} if missing == "absent" else {AGE: missing, DEVICE: missing, ENGAGEMENT: missing}

    for text in [
        "trait.age > 3",
        "trait.age <= 3",
        "trait.age == 3",
        "trait.age != 3",
        "trait.age between 0 and 200",
        "trait.age in (1, 2)",
        "trait.age not in (1, 2)",
        'context.device != "mobile"',
        'context.device not in ("mobile")',
        "engagement_score >= 0",
    ]:
        rule = parse_rule(text)
        assert evaluate(rule, values()) is False, text
        assert evaluate(parse_rule(f"not ({text})"), values()) is True, text


def test_values_of_another_type_compare_false() -> None:
    assert evaluate(parse_rule('context.device != "mobile"'), {DEVICE: 3}) is False
    assert evaluate(parse_rule("trait.age != 3"), {AGE: "three"}) is False
    assert evaluate(parse_rule("trait.age > 3"), {AGE: True}) is False
    assert evaluate(parse_rule("trait.vip == true"), {FeatureRef("trait", name="vip"): 1}) is False
    assert (
        evaluate(parse_rule("trait.vip == true"), {FeatureRef("trait", name="vip"): np.bool_(True)}) is True
    )
    assert evaluate(parse_rule('trait.country in ("DE", 49)'), {COUNTRY: 49}) is True
    assert evaluate(parse_rule('trait.country in ("DE", 49)'), {COUNTRY: "49"}) is False


def test_numpy_scalars_give_python_bools() -> None:
    rule = parse_rule("count(view, window=7d) >= 3 and trait.age < 30")
    assert evaluate(rule, {VIEWS_7D: np.int64(3), AGE: np.float32(20.0)}) is True


def test_columns_give_a_bool_column() -> None:
    rule = parse_rule('count(view, window=7d) >= 3 and (context.device == "mobile" or trait.age < 18)')
    result = evaluate(
        rule,
        {
            VIEWS_7D: np.array([3, 3, 3, 2, 10]),
            DEVICE: np.array(["mobile", None, "web", "mobile", 7], dtype=object),
            AGE: np.array([40.0, 12.0, np.nan, 10.0, 17.9]),
        },
    )
    assert result.dtype == bool
    assert result.tolist() == [True, True, False, False, True]


def test_constant_answers_over_columns_are_columns() -> None:
    column = {VIEWS_7D: np.array([0, 5, 9])}
    assert evaluate(parse_rule("count(view, window=7d) >= 0 or true"), column).tolist() == [True] * 3
    # A ref absent from the columns is missing for every row.
    result = evaluate(parse_rule("count(view, window=7d) > 1 or not trait.age > 3"), column)
    assert result.tolist() == [True, True, True]
    result = evaluate(parse_rule("trait.age > 3 and count(view, window=7d) > 1"), column)
    assert result.tolist() == [False, False, False]


@settings(max_examples=300, deadline=None)
@given(expr=exprs, table=tables())
def test_scalar_rows_equal_vectorized_columns(expr: Any, table: Any) -> None:
    rows, columns = table
    rule = rule_from_expr(expr)
    vector = evaluate(rule, columns)
    expected = [evaluate(rule, row) for row in rows]
    assert all(type(answer) is bool for answer in expected)
    if not columns:  # no column at all: nothing says how many rows, the answer is a scalar
        assert type(vector) is bool
        return
    assert isinstance(vector, np.ndarray) and vector.dtype == bool and len(vector) == len(rows)
    assert vector.tolist() == expected


@settings(max_examples=100, deadline=None)
@given(a=exprs, b=exprs, table=tables())
def test_de_morgan(a: Any, b: Any, table: Any) -> None:
    rows, columns = table
    for data in [columns, *rows]:
        left = evaluate(rule_from_expr(Not(And((a, b)))), data)
        right = evaluate(rule_from_expr(Or((Not(a), Not(b)))), data)
        assert np.array_equal(left, right)
        left = evaluate(rule_from_expr(Not(Or((a, b)))), data)
        right = evaluate(rule_from_expr(And((Not(a), Not(b)))), data)
        assert np.array_equal(left, right)


@settings(max_examples=60, deadline=None)
@given(a=exprs, table=tables())
def test_double_negation_and_excluded_middle(a: Any, table: Any) -> None:
    rows, columns = table
    for data in [columns, *rows]:
        assert np.array_equal(evaluate(rule_from_expr(Not(Not(a))), data), evaluate(rule_from_expr(a), data))
        assert np.all(evaluate(rule_from_expr(Or((a, Not(a)))), data))


def test_a_rule_is_compiled_once() -> None:
    rule = parse_rule("count(view, window=7d) >= 3")
    evaluate(rule, {VIEWS_7D: 1})
    compiled = rule._compiled
    assert compiled is not None
    evaluate(rule, {VIEWS_7D: 5})
    assert rule._compiled is compiled
