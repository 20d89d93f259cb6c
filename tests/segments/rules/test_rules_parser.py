"""Parsing rules: the DESIGN.md examples, every error with the position of its fault, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.errors import ValidationFailed
from attune.features.refs import FeatureRef
from attune.segments.rules import (
    And,
    Between,
    Compare,
    Const,
    InSet,
    Not,
    Or,
    RuleError,
    Truthy,
    parse_rule,
)

DAY = 86400.0

DESIGN_EXAMPLES = [
    ("count(view, window=7d) >= 3", {FeatureRef("count", "view", window_seconds=7 * DAY)}),
    (
        'count(view, window=7d, category="drama") > 3 and trait.age between 18 and 24',
        {
            FeatureRef("count", "view", window_seconds=7 * DAY, category="drama"),
            FeatureRef("trait", name="age"),
        },
    ),
    (
        "sum(purchase.value, window=30d) >= 100 or engagement_score >= 0.7",
        {
            FeatureRef("sum", "purchase", field="value", window_seconds=30 * DAY),
            FeatureRef("feature", name="engagement_score"),
        },
    ),
    (
        'context.device == "mobile" and not exists(purchase, window=30d)',
        {FeatureRef("context", name="device"), FeatureRef("count", "purchase", window_seconds=30 * DAY)},
    ),
    (
        'segment("drama_fans") and trait.country in ("DE", "FR")',
        {FeatureRef("segment", name="drama_fans"), FeatureRef("trait", name="country")},
    ),
]


@pytest.mark.parametrize(("text", "refs"), DESIGN_EXAMPLES)
def test_design_examples_parse_to_their_refs(text: str, refs: set[FeatureRef]) -> None:
    rule = parse_rule(text)
    assert rule.text == text
    assert rule.refs == refs
    assert all(type(ref.kind) is str for ref in rule.refs)


def test_design_examples_parse_to_the_expected_trees() -> None:
    views = FeatureRef("count", "view", window_seconds=7 * DAY, category="drama")
    age = FeatureRef("trait", name="age")
    assert parse_rule(DESIGN_EXAMPLES[1][0]).expr == And((Compare(views, ">", 3.0), Between(age, 18.0, 24.0)))
    purchases = FeatureRef("count", "purchase", window_seconds=30 * DAY)
    device = FeatureRef("context", name="device")
    assert parse_rule(DESIGN_EXAMPLES[3][0]).expr == And(
        (Compare(device, "==", "mobile"), Not(Truthy(purchases)))
    )
    rule = parse_rule(DESIGN_EXAMPLES[4][0])
    assert rule.expr == And(
        (
            Truthy(FeatureRef("segment", name="drama_fans")),
            InSet(FeatureRef("trait", name="country"), ("DE", "FR")),
        )
    )
    assert rule.segments == {"drama_fans"}


@pytest.mark.parametrize(
    ("window", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("7d", 604800.0), ("1.5h", 5400.0), ("90d", 90 * DAY)],
)
def test_window_units(window: str, seconds: float) -> None:
    (ref,) = parse_rule(f"count(view, window={window}) > 0").refs
    assert ref.window_seconds == seconds


def test_no_window_means_all_time_and_other_functions() -> None:
    rule = parse_rule('count(view) > 1 and distinct(view, window=1h) >= 2 and count("add_to_cart") < 1')
    assert rule.refs == {
        FeatureRef("count", "view"),
        FeatureRef("distinct", "view", window_seconds=3600.0),
        FeatureRef("count", "add_to_cart"),
    }


def test_named_features_may_take_a_window() -> None:
    rule = parse_rule("frequency(window=7d) >= 3 and engagement_score(window=30d) > 0.5 and recency_days < 3")
    assert rule.refs == {
        FeatureRef("feature", name="frequency", window_seconds=7 * DAY),
        FeatureRef("feature", name="engagement_score", window_seconds=30 * DAY),
        FeatureRef("feature", name="recency_days"),
    }
    assert "unknown function 'frequency'" in fault("frequency(view) > 1").reason
    assert "is a number" in fault("frequency(window=7d)").reason
    assert fault("frequency(window=7d, window=1d) > 1").position == 21
    assert "must be a positive length" in fault("frequency(window=0h) > 1").reason


def test_precedence_not_and_or_and_parentheses() -> None:
    a, b, c = (FeatureRef("feature", name=n) for n in "abc")
    assert parse_rule("a > 1 or b > 1 and c > 1").expr == Or(
        (Compare(a, ">", 1.0), And((Compare(b, ">", 1.0), Compare(c, ">", 1.0))))
    )
    assert parse_rule("(a > 1 or b > 1) and not c > 1").expr == And(
        (Or((Compare(a, ">", 1.0), Compare(b, ">", 1.0))), Not(Compare(c, ">", 1.0)))
    )
    assert parse_rule("not not true").expr == Not(Not(Const(True)))


def test_literals_operators_and_lists() -> None:
    x = FeatureRef("trait", name="x")
    assert parse_rule("trait.x != 'it''s'".replace("''", "\\'")).expr == Compare(x, "!=", "it's")
    assert parse_rule('trait.x == "a\\"b\\\\c\\n"').expr == Compare(x, "==", 'a"b\\c\n')
    assert parse_rule("trait.x == true").expr == Compare(x, "==", True)
    assert parse_rule("trait.x <= -2.5e1").expr == Compare(x, "<=", -25.0)
    assert parse_rule("trait.x not in (1, 'a', false,)").expr == InSet(x, (1.0, "a", False), negated=True)
    assert parse_rule("trait.x between 3 and 3").expr == Between(x, 3.0, 3.0)


def test_keywords_inside_names_are_names() -> None:
    rule = parse_rule("android > 1 and order_count >= 2 and notes < 1 and inbox == 0 and trait.ortho == 1")
    assert {ref.name for ref in rule.refs} == {"android", "order_count", "notes", "inbox", "ortho"}


def test_multi_line_rules_report_line_and_column() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule('count(view) > 3\n  and context.device > "x"')
    assert (caught.value.line, caught.value.column) == (2, 24)
    assert caught.value.position == 16 + 23
    assert str(caught.value).startswith("line 2, column 24: ")


def fault(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "at", "says"),
    [
        # unbalanced parentheses
        ("(count(view) > 3", "<end>", "expected ')'"),
        ("count(view) > 3)", 15, "unbalanced ')'"),
        ("((a > 1) or (b > 2)", "<end>", "expected ')'"),
        # missing operand
        ("count(view) >", "<end>", "after '>'"),
        ("count(view) >= and x > 1", "and", "expected a value"),
        ("count(view) > 3 and", "<end>", "expected a condition after 'and'"),
        ("or x > 1", "or", "'or' is a keyword"),
        ("x > 1 and and > 2", 10, "'and' is a keyword"),
        ("x between 1 and", "<end>", "expected a number after 'and'"),
        # unknown function
        ("foo(view) > 1", "foo", "unknown function 'foo'"),
        ("x > 1 and counts(view) > 2", "counts", "unknown function 'counts'"),
        # bad windows
        ("count(view, window=0d) > 1", "0d", "must be a positive length"),
        ("count(view, window=-3h) > 1", "-3h", "must be a positive length"),
        ("count(view, window=7x) > 1", "7x", "bad window '7x'"),
        ("count(view, window=7) > 1", "7)", "bad window '7'"),
        ("count(view, window=0.0s) > 1", "0.0s", "must be a positive length"),
        ('count(view, window="7d") > 1', '"7d"', "without quotes"),
        # type errors
        ('context.device > "a"', '"a"', "expected a number after '>'"),
        ('count(view, window=7d) >= "3"', '"3"', "expected a number after '>='"),
        ("count(view) == true", "true", "expected a number after '=='"),
        ('engagement_score in (1, "x")', '"x"', "expected a number after 'in'"),
        # empty range
        ("trait.age between 5 and 1", "5 and", "empty range: 5 is greater than 1"),
        # trailing garbage
        ("count(view) > 3 xyz", "xyz", "found 'xyz'"),
        ("count(view) > 3 3", 16, "found '3'"),
        ("x > 1 AND y > 2", "AND", "keywords are lower case"),
        # misc
        ("context.device = 'x'", "= 'x'", "use '=='"),
        ("trait.a.b == 1", "b ==", "one name"),
        ("x == 'abc", "'abc", "unterminated string"),
        ("sum(purchase) > 1", ")", "sum(purchase.value)"),
        ("count(view, window=7d, window=3d) > 1", "window=3d", "given twice"),
        ("count(view, colour='x') > 1", "colour", "unknown argument 'colour'"),
        ("count(window=7d) > 1", "window", "needs an event type first"),
        ("count(view, category=3) > 1", "3)", "quoted string"),
        ("count(view)", "count", "is a number"),
        ("exists(view) > 1", "exists", "is a condition"),
        ("segment(drama) > 0.5", "drama", "quoted segment name"),
        ("x == 1e999", "1e999", "out of range"),
        ('x == "\\q"', "\\q", "unknown escape"),
    ],
)
def test_bad_rules_point_at_the_fault(text: str, at: str | int, says: str) -> None:
    """``at`` is the text the fault starts with (its first occurrence), an offset, or the end."""
    error = fault(text)
    expected = at if isinstance(at, int) else len(text) if at == "<end>" else text.index(at)
    assert error.position == expected, str(error)
    assert says in error.reason, str(error)
    assert str(error).startswith(f"line 1, column {expected + 1}: ")


def test_rule_errors_are_validation_failures() -> None:
    error = fault("count(view) >")
    assert isinstance(error, ValidationFailed)
    assert error.status == 422


@pytest.mark.parametrize("text", ["", "   \n ", 3, None])
def test_empty_or_non_text_rules(text: object) -> None:
    with pytest.raises(RuleError):
        parse_rule(text)  # type: ignore[arg-type]


def test_depth_and_length_limits() -> None:
    assert parse_rule("(" * 2000 + "x > 1" + ")" * 2000).expr == Compare(
        FeatureRef("feature", name="x"), ">", 1.0
    )
    assert "nested" in fault("not " * 65 + "x > 1").reason
    assert "longer than" in fault("x > 1 or " * 2000 + "x > 1").reason


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_a_positioned_rule_error(text: str) -> None:
    try:
        parse_rule(text)
    except RuleError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
        assert error.line is not None and error.column is not None


alphabet = st.sampled_from(
    [
        "count(",
        "view",
        ",",
        "window=",
        "7d",
        ")",
        " and ",
        " or ",
        "not ",
        ">=",
        "==",
        "3",
        '"x"',
        "(",
        "trait.age",
        " between ",
        " in ",
        "segment(",
        "true",
        "-",
    ]
)


@given(st.lists(alphabet, max_size=14).map("".join))
def test_near_miss_rules_parse_or_raise_a_positioned_rule_error(text: str) -> None:
    try:
        parse_rule(text)
    except RuleError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
