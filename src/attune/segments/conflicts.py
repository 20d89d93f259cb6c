"""The conflict report: definitions a person should review before trusting memberships.

Three kinds, all found by case analysis over the rules' constants
(:mod:`attune.segments.rules.analysis`):

``never_matches``   no person can match the rule (``count(view) > 3 and count(view) < 2``);
``always_matches``  every person matches it (``count(view) >= 0``);
``equal_priority``  two segments of one exclusive group have the same priority and one person
                    can match both, so the winner is decided by name order only.

A conflict carries an example person when there is one. ``exhaustive`` is False when the
candidate space was too large and was sampled: a ``never_matches`` found that way means "no
match among the sampled cases". Learnt segments (no rule) are not analysed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

from attune.features.refs import FeatureRef
from attune.segments.definitions import SegmentDefinition
from attune.segments.rules.analysis import (
    DEFAULT_LIMIT,
    always_matches,
    can_match,
    can_match_together,
    describe_example,
)
from attune.segments.rules.render import render_ref

ConflictKind = Literal["equal_priority", "never_matches", "always_matches"]


@dataclass(frozen=True)
class Conflict:
    """One finding of the conflict report."""

    kind: ConflictKind
    #: The segments involved (one, or two for ``equal_priority``), in name order.
    segments: tuple[str, ...]
    #: A sentence for people.
    message: str
    #: A person showing the conflict: rendered ref → value (``None`` = missing), if any.
    example: dict[str, Any] | None = field(default=None)
    #: False when the answer comes from a sample of the candidate space.
    exhaustive: bool = True


def _example(values: Mapping[FeatureRef, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {render_ref(ref): value for ref, value in sorted(values.items(), key=lambda i: i[0].column)}


def conflict_report(
    defs: Mapping[str, SegmentDefinition] | Iterable[SegmentDefinition], *, limit: int = DEFAULT_LIMIT
) -> list[Conflict]:
    """Every conflict among ``defs``: per-rule findings first (name order), then group conflicts."""
    by_name = dict(defs) if isinstance(defs, Mapping) else {d.name: d for d in defs}
    report: list[Conflict] = []
    for name in sorted(by_name):
        rule = by_name[name].rule
        if rule is None:
            continue
        matchable = can_match(rule.expr, limit=limit)
        if not matchable.holds:
            scope = "" if matchable.exhaustive else " (among sampled cases)"
            report.append(
                Conflict(
                    "never_matches",
                    (name,),
                    f"segment '{name}' can never match{scope}: {rule.text}",
                    None,
                    matchable.exhaustive,
                )
            )
            continue
        total = always_matches(rule.expr, limit=limit)
        if total.holds:
            scope = "" if total.exhaustive else " (in every sampled case)"
            report.append(
                Conflict(
                    "always_matches",
                    (name,),
                    f"segment '{name}' matches everyone{scope}: {rule.text}",
                    None,
                    total.exhaustive,
                )
            )
    groups: dict[str, list[SegmentDefinition]] = {}
    for definition in by_name.values():
        if definition.group is not None and definition.rule is not None:
            groups.setdefault(definition.group, []).append(definition)
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda d: d.name)
        for first, second in combinations(members, 2):
            if first.priority != second.priority:
                continue
            assert first.rule is not None and second.rule is not None
            verdict = can_match_together(first.rule.expr, second.rule.expr, limit=limit)
            if not verdict.holds:
                continue
            example = verdict.example or {}
            report.append(
                Conflict(
                    "equal_priority",
                    (first.name, second.name),
                    f"segments '{first.name}' and '{second.name}' in group '{group}' both have priority "
                    f"{first.priority} and can match the same person (e.g. {describe_example(example) or 'anyone'}); "
                    f"'{first.name}' wins only by name order",
                    _example(verdict.example),
                )
            )
    return report
