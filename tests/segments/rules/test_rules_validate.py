"""Validation against a feature catalog: unknown names are refused where they stand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from attune.segments.rules import RuleError, parse_rule, validate_rule


@dataclass(frozen=True)
class Catalog:
    features: frozenset[str] = frozenset({"engagement_score", "recency_days", "frequency"})
    context: frozenset[str] = frozenset({"device", "city", "hour"})
    event_types: frozenset[str] | None = frozenset({"view", "purchase", "like"})


def test_known_names_pass() -> None:
    rule = parse_rule(
        "count(view, window=7d) > 3 and sum(purchase.value) > 1 and engagement_score >= 0.7 "
        'and context.device == "mobile" and trait.anything == 1 and segment("other")'
    )
    validate_rule(rule, Catalog())


@pytest.mark.parametrize(
    ("text", "at", "says"),
    [
        (
            "engagement_scor >= 0.7",
            "engagement_scor",
            "unknown feature 'engagement_scor'; did you mean 'engagement_score'?",
        ),
        (
            'recency_days > 1 and context.devise == "mobile"',
            "devise",
            "unknown context attribute 'devise'; did you mean 'device'?",
        ),
        ("count(veiw, window=7d) > 3", "veiw", "unknown event type 'veiw'; did you mean 'view'?"),
        ("not exists(zzz)", "zzz", "unknown event type 'zzz'; known: like, purchase, view"),
        ("sum(order.value) > 1", "order", "unknown event type 'order'"),
    ],
)
def test_unknown_names_are_refused_at_their_position(text: str, at: str, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate_rule(parse_rule(text), Catalog())
    assert caught.value.position == text.index(at)
    assert says in str(caught.value)


def test_any_event_type_when_the_catalog_does_not_list_them() -> None:
    validate_rule(parse_rule("count(anything) > 1"), Catalog(event_types=None))
