"""The abstract syntax of segment rules: small frozen dataclasses, compared by meaning.

Every leaf reads exactly one :class:`FeatureRef` and compares it with constants; rules
never compare two refs with each other, which keeps evaluation vectorizable and lets
:mod:`.analysis` decide a rule by case analysis over its constants. ``pos`` fields say
where in the text a leaf's name stands (for validation messages); they take no part in
equality, so ``parse(render(expr)) == expr``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from attune.features.refs import FeatureRef

#: A constant in a rule: a number, a quoted string or true/false.
Value: TypeAlias = float | str | bool
#: Comparison operators.
Op = Literal["==", "!=", ">", ">=", "<", "<="]
ORDERING_OPS: frozenset[str] = frozenset({">", ">=", "<", "<="})
#: Kinds whose values are always numbers (strings cannot be compared with them).
NUMERIC_KINDS: frozenset[str] = frozenset({"count", "sum", "distinct", "feature", "segment"})
#: Kinds that are never missing: no events means 0, not a member means confidence 0.
ZERO_DEFAULT_KINDS: frozenset[str] = frozenset({"count", "sum", "distinct", "segment"})


def _pos() -> Any:
    return field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """``ref op value``: false when the value is missing or not of the constant's type."""

    ref: FeatureRef
    op: Op
    value: Value
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Between:
    """``ref between low and high``, bounds included (``low <= high``)."""

    ref: FeatureRef
    low: float
    high: float
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class InSet:
    """``ref in (v1, v2, …)``; ``negated`` for ``not in`` (still false when missing)."""

    ref: FeatureRef
    values: tuple[Value, ...]
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Truthy:
    """``exists(t, …)`` (a count) or ``segment("x")`` (a confidence): true when > 0."""

    ref: FeatureRef
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Const:
    """``true`` or ``false`` as a whole condition (everyone / no one)."""

    value: bool


@dataclass(frozen=True, slots=True)
class Not:
    """``not expr``: the complement, so ``not`` of a comparison on a missing value is true."""

    expr: Expr


@dataclass(frozen=True, slots=True)
class And:
    """``a and b and …`` (two or more operands)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """``a or b or …`` (two or more operands)."""

    items: tuple[Expr, ...]


Leaf: TypeAlias = Compare | Between | InSet | Truthy
Expr: TypeAlias = Compare | Between | InSet | Truthy | Const | Not | And | Or


def leaves(expr: Expr) -> Iterator[Leaf]:
    """Every leaf of ``expr`` in text order (iterative: deep rules do not recurse)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (And, Or)):
            stack.extend(reversed(node.items))
        elif isinstance(node, Not):
            stack.append(node.expr)
        elif not isinstance(node, Const):
            yield node


def depth(expr: Expr) -> int:
    """Nesting depth of ``expr`` (a leaf is 1)."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, (And, Or)):
            stack.extend((item, level + 1) for item in node.items)
        elif isinstance(node, Not):
            stack.append((node.expr, level + 1))
    return deepest


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its text, its expression and everything it reads.

    ``refs`` holds every :class:`FeatureRef` the rule needs (segment references included, as
    ``FeatureRef("segment", name=…)``); ``segments`` the names of the segments it refers to.
    Build with :func:`attune.segments.rules.parse_rule`; evaluate with
    :func:`attune.segments.rules.evaluate`.
    """

    text: str
    expr: Expr
    refs: frozenset[FeatureRef]
    segments: frozenset[str]
    #: The compiled evaluator, built once on first use (not part of the rule's identity).
    _compiled: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False, hash=False)
