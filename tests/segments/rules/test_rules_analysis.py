"""Case analysis: exact verdicts on known rules, and agreement with random people (Hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_strategies import exprs, people

from attune.features.refs import FeatureRef
from attune.segments.rules import evaluate, leaves, parse_rule, rule_from_expr
from attune.segments.rules.analysis import (
    MISSING,
    always_matches,
    can_match,
    can_match_together,
    candidate_values,
    case_table,
)
from attune.segments.rules.nodes import Expr

VIEWS = FeatureRef("count", "view")


def test_candidates_cover_every_cell() -> None:
    assert candidate_values(VIEWS, [3.0]) == [0.0, 2.0, 3.0, 4.0]
    assert candidate_values(VIEWS, [2.5]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert candidate_values(FeatureRef("trait", name="age"), [18.0, 24.0]) == [
        17.0,
        18.0,
        21.0,
        24.0,
        25.0,
        MISSING,
    ]
    device = candidate_values(FeatureRef("context", name="device"), ["mobile"])
    assert "mobile" in device and MISSING in device and len(device) == 3
    assert candidate_values(FeatureRef("segment", name="x"), [0.0, 0.5]) == [0.0, 0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    "text",
    [
        "count(view) > 3 and count(view) < 4",  # no integer between 3 and 4
        "count(view) > 2.5 and count(view) < 3",
        "count(view) < 0",
        "trait.age > 30 and trait.age < 20",
        'context.device == "a" and context.device == "b"',
        "trait.age between 18 and 24 and not trait.age between 10 and 30",
        'segment("x") > 1',
        "false",
        "exists(view) and not count(view) >= 1",
    ],
)
def test_rules_that_never_match(text: str) -> None:
    verdict = can_match(parse_rule(text).expr)
    assert not verdict.holds and verdict.exhaustive


@pytest.mark.parametrize(
    "text",
    [
        "count(view, window=7d) >= 0",
        "distinct(view) >= 0 or trait.age > 3",
        "not exists(purchase) or exists(purchase)",
        "trait.age > 3 or not trait.age > 3",
        'segment("x") <= 1',
        "true",
        "sum(purchase.value) > 10 or sum(purchase.value) <= 10",
    ],
)
def test_rules_that_always_match(text: str) -> None:
    verdict = always_matches(parse_rule(text).expr)
    assert verdict.holds and verdict.exhaustive


@pytest.mark.parametrize(
    "text",
    [
        "count(view) >= 3",
        "trait.age >= 0",  # missing age does not match
        "engagement_score >= 0 or engagement_score < 0",  # a missing score matches neither
        'context.device != "mobile" or context.device == "mobile"',
    ],
)
def test_ordinary_rules_can_match_and_can_fail(text: str) -> None:
    rule = parse_rule(text)
    match, total = can_match(rule.expr), always_matches(rule.expr)
    assert match.holds and not total.holds
    assert evaluate(rule, match.example) is True
    assert evaluate(rule, total.example) is False


def test_joint_search_finds_a_person_in_both_or_proves_none() -> None:
    a = parse_rule("count(view) > 3 and trait.age < 30").expr
    b = parse_rule("count(view) < 5 and trait.age >= 18").expr
    verdict = can_match_together(a, b)
    assert verdict.holds
    assert evaluate(rule_from_expr(a), verdict.example) and evaluate(rule_from_expr(b), verdict.example)
    assert not can_match_together(a, parse_rule("count(view) <= 3").expr).holds


def test_large_spaces_are_sampled_and_say_so() -> None:
    text = " and ".join(f"trait.t{i} between {i} and {i + 5}" for i in range(12))
    table = case_table([parse_rule(text).expr], limit=1000)
    assert not table.exhaustive and table.size == 1000
    verdict = can_match(parse_rule(text).expr, limit=1000)
    assert verdict.holds or not verdict.exhaustive


@st.composite
def person(draw: Any, expr: Expr) -> dict[FeatureRef, Any]:
    return {ref: draw(people(ref)) for ref in {leaf.ref for leaf in leaves(expr)}}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), expr=exprs)
def test_verdicts_agree_with_random_people(data: st.DataObject, expr: Expr) -> None:
    rule = rule_from_expr(expr)
    matchable, total = can_match(expr), always_matches(expr)
    assert matchable.exhaustive and total.exhaustive  # small rules are decided exactly
    for _ in range(10):
        someone = data.draw(person(expr))
        answer = evaluate(rule, someone)
        if answer:
            assert matchable.holds, (rule.text, someone)
        else:
            assert not total.holds, (rule.text, someone)
    if matchable.holds:
        assert evaluate(rule, matchable.example) is True
    if not total.holds:
        assert evaluate(rule, total.example) is False
