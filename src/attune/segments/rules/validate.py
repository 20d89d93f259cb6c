"""Check a parsed rule against what the features package can actually answer."""

from __future__ import annotations

import difflib
from typing import Protocol

from attune.segments.rules.errors import RuleError
from attune.segments.rules.nodes import Rule, leaves


class RuleCatalog(Protocol):
    """What rules may name (``attune.features.catalog.FEATURE_CATALOG`` provides one)."""

    #: Named scalar features (``engagement_score``, ``recency_days`` …).
    features: frozenset[str]
    #: Context attributes (``device``, ``city`` …).
    context: frozenset[str]
    #: Known event types, or ``None`` when any event type may be counted.
    event_types: frozenset[str] | None


def _unknown(what: str, name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(known)) or 'none'}"
    return f"unknown {what} '{name}'{hint}"


def validate_rule(rule: Rule, catalog: RuleCatalog) -> None:
    """Raise :class:`RuleError` at the first name in ``rule`` that ``catalog`` does not know.

    Traits are free-form (any ``trait.<name>``) and segment references are checked against
    the other definitions by :func:`attune.segments.definitions.dependency_order`.
    """
    for leaf in leaves(rule.expr):
        ref = leaf.ref
        reason: str | None = None
        if ref.kind == "feature" and ref.name not in catalog.features:
            reason = _unknown("feature", ref.name or "", catalog.features)
        elif ref.kind == "context" and ref.name not in catalog.context:
            reason = _unknown("context attribute", ref.name or "", catalog.context)
        elif (
            ref.kind in ("count", "sum", "distinct")
            and catalog.event_types is not None
            and ref.event_type not in catalog.event_types
        ):
            reason = _unknown("event type", ref.event_type or "", catalog.event_types)
        if reason is not None:
            raise RuleError(reason, text=rule.text, position=leaf.pos)
