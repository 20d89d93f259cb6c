"""Decide what a rule can do by case analysis over its constants.

A leaf only ever compares one value with constants, so its truth depends only on where the
value falls among the constants it is compared with: below, at, between or above them, one of
the listed strings or another one, or missing. One *candidate* value per such cell covers
every person there could be; evaluating a rule (vectorized) over the cross product of its
refs' candidates therefore decides exactly whether it can match, or always matches. When
the product is larger than ``limit`` a seeded random sample of it is evaluated instead and
the answer says it is not exhaustive.

Domain knowledge narrows the cells: counts and distinct counts are non-negative integers
and never missing (no events is 0), sums are never missing, a segment confidence lies in
[0, 1] (0 when not a member). A ``segment("x")`` reference is treated as a free confidence:
the analysis does not look into x's own rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from attune.features.refs import FeatureRef
from attune.segments.rules.evaluator import compile_expr
from attune.segments.rules.nodes import (
    ZERO_DEFAULT_KINDS,
    Between,
    Compare,
    Expr,
    InSet,
    Truthy,
    Value,
    leaves,
)
from attune.segments.rules.render import render_ref, render_value

#: Largest cross product evaluated in full; larger ones are sampled.
DEFAULT_LIMIT = 100_000
#: The candidate for "a missing value".
MISSING = None
#: A string equal to none of a rule's constants (a control character keeps it out of real data).
OTHER_TEXT = "\x00other"


def rule_constants(exprs: Iterable[Expr]) -> dict[FeatureRef, list[Value]]:
    """For each ref read by ``exprs``, the constants it is compared with (in text order)."""
    found: dict[FeatureRef, list[Value]] = {}
    for expr in exprs:
        for leaf in leaves(expr):
            bucket = found.setdefault(leaf.ref, [])
            if isinstance(leaf, Compare):
                bucket.append(leaf.value)
            elif isinstance(leaf, Between):
                bucket.extend((leaf.low, leaf.high))
            elif isinstance(leaf, InSet):
                bucket.extend(leaf.values)
            elif isinstance(leaf, Truthy):
                bucket.append(0.0)
    return found


def _real_cells(numbers: list[float]) -> list[float]:
    points = sorted(set(numbers))
    cells = [points[0] - 1.0, *points, points[-1] + 1.0]
    cells.extend((a + b) / 2 for a, b in pairwise(points))
    return cells


def _integer_cells(numbers: list[float]) -> list[float]:
    cells = {0.0}
    for c in numbers:
        low, high = math.floor(c), math.ceil(c)
        cells.update(float(v) for v in (low - 1, low, low + 1, high - 1, high, high + 1) if v >= 0)
    return sorted(cells)


def candidate_values(ref: FeatureRef, constants: Iterable[Value]) -> list[Any]:
    """One representative value per cell of ``ref``'s value space cut by ``constants``."""
    constants = list(constants)
    numbers = [float(c) for c in constants if type(c) is float or type(c) is int]
    texts = sorted({c for c in constants if isinstance(c, str)})
    flags = sorted({c for c in constants if type(c) is bool})
    out: list[Any] = []
    if ref.kind in ("count", "distinct"):
        return _integer_cells(numbers)
    if numbers:
        cells = _real_cells(numbers)
        if ref.kind == "segment":
            cells = sorted({min(1.0, max(0.0, c)) for c in cells} | {0.0, 1.0})
        out.extend(sorted(set(cells)))
    elif ref.kind in ZERO_DEFAULT_KINDS:
        out.append(0.0)
    if texts:
        out.extend(texts)
        out.append(OTHER_TEXT)
    if flags:
        out.extend((False, True))
    if ref.kind not in ZERO_DEFAULT_KINDS:
        out.append(MISSING)
    return out


def _column(ref: FeatureRef, values: list[Any]) -> np.ndarray:
    if all(type(v) is float for v in values):
        return np.array(values, dtype=float)
    if ref.kind not in ("trait", "context") and all(v is MISSING or type(v) is float for v in values):
        return np.array([math.nan if v is MISSING else v for v in values], dtype=float)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


@dataclass(frozen=True)
class CaseTable:
    """Candidate people: one column per ref (numpy arrays of equal length ``size``)."""

    columns: dict[FeatureRef, np.ndarray]
    size: int
    #: True when the table is the whole cross product (answers are exact), False when sampled.
    exhaustive: bool

    def row(self, index: int) -> dict[FeatureRef, Any]:
        """Row ``index`` as ref → scalar (NaN shown as missing: ``None``)."""
        out: dict[FeatureRef, Any] = {}
        for ref, column in self.columns.items():
            value = column[index]
            if isinstance(value, float | np.floating) and math.isnan(value):
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            out[ref] = value
        return out


def case_table(exprs: Iterable[Expr], *, limit: int = DEFAULT_LIMIT, seed: int = 0) -> CaseTable:
    """The cross product of candidate values of every ref in ``exprs`` (sampled above ``limit``)."""
    constants = rule_constants(exprs)
    refs = sorted(constants, key=lambda r: r.column)
    domains = [_column(ref, candidate_values(ref, constants[ref])) for ref in refs]
    total = math.prod(len(d) for d in domains) if domains else 1
    if total <= limit:
        rows = np.arange(total)
        columns: dict[FeatureRef, np.ndarray] = {}
        stride = 1
        for ref, domain in zip(refs, domains, strict=True):
            columns[ref] = domain[(rows // stride) % len(domain)]
            stride *= len(domain)
        return CaseTable(columns, total, True)
    rng = np.random.default_rng(seed)
    columns = {
        ref: domain[rng.integers(0, len(domain), size=limit)]
        for ref, domain in zip(refs, domains, strict=True)
    }
    return CaseTable(columns, limit, False)


def evaluate_table(expr: Expr, table: CaseTable) -> np.ndarray:
    """``expr`` over every row of ``table`` (a bool array of length ``table.size``)."""
    result = compile_expr(expr)(table.columns)
    if type(result) is np.ndarray:
        return result
    return np.full(table.size, bool(result))


@dataclass(frozen=True)
class Verdict:
    """An answer from case analysis, with a witness when there is one."""

    holds: bool
    exhaustive: bool
    #: A person (ref → value, ``None`` = missing) showing why, when the answer has one.
    example: dict[FeatureRef, Any] | None = None


def can_match(expr: Expr, *, limit: int = DEFAULT_LIMIT) -> Verdict:
    """Whether some person matches ``expr`` (with an example person when one does)."""
    table = case_table([expr], limit=limit)
    hits = np.flatnonzero(evaluate_table(expr, table))
    if len(hits):
        return Verdict(True, True, table.row(int(hits[0])))
    return Verdict(False, table.exhaustive)


def always_matches(expr: Expr, *, limit: int = DEFAULT_LIMIT) -> Verdict:
    """Whether every person matches ``expr`` (with a non-matching example when not)."""
    table = case_table([expr], limit=limit)
    misses = np.flatnonzero(~evaluate_table(expr, table))
    if len(misses):
        return Verdict(False, True, table.row(int(misses[0])))
    return Verdict(True, table.exhaustive)


def can_match_together(first: Expr, second: Expr, *, limit: int = DEFAULT_LIMIT) -> Verdict:
    """Whether one person can match both expressions (searching their joint candidate space)."""
    table = case_table([first, second], limit=limit)
    both = evaluate_table(first, table) & evaluate_table(second, table)
    hits = np.flatnonzero(both)
    if len(hits):
        return Verdict(True, True, table.row(int(hits[0])))
    return Verdict(False, table.exhaustive)


def describe_example(example: Mapping[FeatureRef, Any]) -> str:
    """``count(view, window=7d) = 3, trait.age missing`` — a witness for messages."""
    parts = []
    for ref, value in sorted(example.items(), key=lambda item: item[0].column):
        if value is None:
            parts.append(f"{render_ref(ref)} missing")
        elif value == OTHER_TEXT:
            parts.append(f"{render_ref(ref)} = another value")
        else:
            parts.append(f"{render_ref(ref)} = {render_value(value)}")
    return ", ".join(parts)
