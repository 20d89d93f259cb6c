"""Memberships of many people at once: the vectorized twin of the engine's per-person path.

Given one numpy column per :class:`FeatureRef` (one row per person), every segment is
evaluated in dependency order with the vectorized rule evaluator, consent-gated by purpose,
and exclusive groups are resolved column-wise with the same rule as
:func:`attune.segments.definitions.resolve_exclusive`: within a group the matching segment of
highest priority wins, equal priorities go to the first name in alphabetical order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from attune.features.refs import FeatureRef


def match_columns(
    order: list[str],
    definitions: Mapping[str, Any],
    values: Mapping[FeatureRef, np.ndarray],
    n: int,
    *,
    learnt: Mapping[str, np.ndarray] | None = None,
    allowed: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Confidence (float, 0 = no match) of every segment for each of ``n`` people.

    ``learnt`` gives learnt segments' confidences, ``allowed`` a bool column per purpose.
    A ``segment("x")`` reference reads ``x``'s match confidence (before exclusive groups),
    as the per-person path does.
    """
    from attune.segments.rules import evaluate

    learnt = learnt or {}
    allowed = allowed or {}
    columns: dict[FeatureRef, Any] = dict(values)
    matches: dict[str, np.ndarray] = {}
    for name in order:
        definition = definitions[name]
        if definition.kind == "learnt":
            confidence = np.asarray(learnt.get(name, np.zeros(n)), dtype=float)
        else:
            for ref_name in definition.rule.segments:
                columns[FeatureRef("segment", name=ref_name)] = matches[ref_name]
            result = evaluate(definition.rule, columns)
            confidence = np.broadcast_to(np.asarray(result, dtype=float), (n,)).copy()
        if definition.purpose is not None:
            confidence = np.where(allowed.get(definition.purpose, np.ones(n, dtype=bool)), confidence, 0.0)
        matches[name] = confidence
    return matches


def resolve_columns(matches: Mapping[str, np.ndarray], definitions: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Apply exclusive groups column-wise: the held confidence of every segment."""
    held = dict(matches)
    groups: dict[str, list[str]] = {}
    for name in matches:
        group = definitions[name].group
        if group:
            groups.setdefault(group, []).append(name)
    for names in groups.values():
        ranked = sorted(names, key=lambda x: (-definitions[x].priority, x))
        taken: np.ndarray | None = None
        for name in ranked:
            column = matches[name]
            if taken is None:
                taken = column > 0
                continue
            held[name] = np.where(taken, 0.0, column)
            taken = taken | (column > 0)
    return held
