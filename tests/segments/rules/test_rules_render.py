"""Rendering: canonical text that parses back to the same tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from rule_strategies import exprs

from attune.segments.rules import parse_rule, render
from attune.segments.rules.nodes import Expr
from attune.segments.rules.render import render_window


@settings(max_examples=200, deadline=None)
@given(exprs)
def test_parse_of_render_is_identity(expr: Expr) -> None:
    assert parse_rule(render(expr)).expr == expr


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("count(view,window=7d)>=3", "count(view, window=7d) >= 3"),
        ("count(view, window=168h) >= 3.0", "count(view, window=7d) >= 3"),
        ("count(view, window=1.5h, category='drama') > 3", 'count(view, window=90m, category="drama") > 3'),
        ("(a > 1 or b > 1) and c > 1", "(a > 1 or b > 1) and c > 1"),
        ("a > 1 or (b > 1 and c > 1)", "a > 1 or b > 1 and c > 1"),
        ("not (a > 1 and b > 1)", "not (a > 1 and b > 1)"),
        ("not exists(purchase, window=30d)", "not exists(purchase, window=30d)"),
        (
            "segment('x') and trait.c not in ('DE', 1, true)",
            'segment("x") and trait.c not in ("DE", 1, true)',
        ),
        ("trait.age between 18 and 24.5", "trait.age between 18 and 24.5"),
        ('count("x-y") > 0', 'count("x-y") > 0'),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert render(parse_rule(text).expr) == canonical
    assert render(parse_rule(canonical).expr) == canonical


@pytest.mark.parametrize(
    ("seconds", "text"), [(1.0, "1s"), (90.0, "90s"), (120.0, "2m"), (86400.0, "1d"), (0.5, "0.5s")]
)
def test_windows_in_the_largest_exact_unit(seconds: float, text: str) -> None:
    assert render_window(seconds) == text
