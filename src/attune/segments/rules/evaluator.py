"""Evaluate a rule for one person (scalars) or for many at once (numpy columns), one semantics.

A rule is compiled once into a tree of closures (cached on the :class:`Rule`); evaluating it
is then plain function calls, with no dispatch on node types. Every leaf first *normalizes*
the value it reads — to a float (NaN when missing or not a number), or to a text/flag plus a
validity mask — and then applies one comparison written with operators that mean the same on
a Python scalar and on a numpy array (``x >= c``, ``(x != c) & (x == x)``, ``ok & (x == c)``).
Only the normalization and ``and``/``or``/``not`` look at whether they hold a scalar or an
array, which is what makes the row-by-row and the vectorized answers agree (a Hypothesis
property test checks it).

Missing values: an absent key, ``None`` or NaN — or a value of another type than the
constant (a string where a number is expected) — makes every comparison on it **false**,
including ``!=`` and ``not in``. ``not`` is the plain complement, so ``not (x > 3)`` is
**true** for a person whose ``x`` is missing. ``exists(...)`` and ``segment("…")`` are
``> 0`` comparisons and follow the same rule.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from attune.features.refs import FeatureRef
from attune.segments.rules.nodes import And, Between, Compare, Const, Expr, InSet, Not, Or, Rule, Truthy

#: A compiled expression: values → bool (scalars) or bool ndarray (columns).
Compiled = Callable[[Mapping[FeatureRef, Any]], Any]
_NAN = math.nan


# ---- normalization --------------------------------------------------------------------------
def _scalar_number(x: Any) -> Any:
    kind = type(x)
    if kind is float or kind is int:
        return x
    if x is None or kind is bool or kind is str or isinstance(x, (bool, np.bool_)):
        return _NAN
    if isinstance(x, numbers.Real):  # numpy scalars, Fraction …
        return float(x)
    return _NAN


def _as_number(x: Any) -> Any:
    """A float (NaN when missing or not a number), or a numeric array with NaN for those."""
    if type(x) is not np.ndarray:
        return _scalar_number(x)
    if x.ndim == 0:
        return _scalar_number(x.item())
    kind = x.dtype.kind
    if kind in "fiu":
        return x
    if kind == "O":
        return np.fromiter(map(_scalar_number, x), dtype=float, count=len(x))
    return np.full(len(x), _NAN)  # strings, booleans, dates: never a number


def _is_text(x: Any) -> bool:
    return isinstance(x, str)


def _as_text(x: Any) -> tuple[Any, Any]:
    """``(value, ok)``: ``ok`` is false (elementwise) where the value is not a string."""
    if type(x) is not np.ndarray:
        return (x, True) if isinstance(x, str) else (None, False)
    if x.ndim == 0:
        return _as_text(x.item())
    kind = x.dtype.kind
    if kind == "U":
        return x, True
    if kind == "O":
        return x, np.fromiter(map(_is_text, x), dtype=bool, count=len(x))
    return np.full(len(x), None, dtype=object), np.zeros(len(x), dtype=bool)


def _is_flag(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))


def _as_flag(x: Any) -> tuple[Any, Any]:
    """``(value, ok)``: ``ok`` is false (elementwise) where the value is not a boolean."""
    if type(x) is not np.ndarray:
        return (bool(x), True) if isinstance(x, (bool, np.bool_)) else (None, False)
    if x.ndim == 0:
        return _as_flag(x.item())
    kind = x.dtype.kind
    if kind == "b":
        return x, True
    if kind == "O":
        return x, np.fromiter(map(_is_flag, x), dtype=bool, count=len(x))
    return np.full(len(x), None, dtype=object), np.zeros(len(x), dtype=bool)


# ---- leaves ---------------------------------------------------------------------------------
def _number_test(op: str, c: float) -> Callable[[Any], Any]:
    if op == ">":
        return lambda x: x > c
    if op == ">=":
        return lambda x: x >= c
    if op == "<":
        return lambda x: x < c
    if op == "<=":
        return lambda x: x <= c
    if op == "==":
        return lambda x: x == c
    # NaN != c is true in IEEE, but missing must be false; NaN is the one value unequal to itself.
    return lambda x: (x != c) & (x == x)  # noqa: PLR0124


def _number_leaf(ref: FeatureRef, test: Callable[[Any], Any]) -> Compiled:
    def leaf(values: Mapping[FeatureRef, Any]) -> Any:
        return test(_as_number(values.get(ref)))

    return leaf


def _masked_leaf(
    ref: FeatureRef, normalize: Callable[[Any], tuple[Any, Any]], test: Callable[[Any], Any]
) -> Compiled:
    def leaf(values: Mapping[FeatureRef, Any]) -> Any:
        x, ok = normalize(values.get(ref))
        if ok is False:
            return False
        return ok & test(x)

    return leaf


def _equality_test(op: str, c: Any) -> Callable[[Any], Any]:
    if op == "==":
        return lambda x: x == c
    return lambda x: x != c


def _isin_numbers(consts: tuple[float, ...], negated: bool) -> Callable[[Any], Any]:
    members = frozenset(consts)
    column = np.array(consts, dtype=float)

    def test(x: Any) -> Any:
        if type(x) is np.ndarray:
            found = np.isin(x, column)
            return (~found & (x == x)) if negated else found  # noqa: PLR0124 (x == x: not NaN)
        return (x == x and x not in members) if negated else x in members  # noqa: PLR0124

    return test


def _isin_objects(consts: tuple[Any, ...], negated: bool) -> Callable[[Any], Any]:
    members = frozenset(consts)

    def test(x: Any) -> Any:
        # Only trusted where ``ok``: x holds strings (or flags), like the constants.
        if type(x) is np.ndarray:
            found = np.zeros(len(x), dtype=bool)
            for const in consts:  # not np.isin: it may sort, and object columns hold None
                found |= x == const
            return ~found if negated else found
        found_one = x in members
        return (not found_one) if negated else found_one

    return test


def _compile_inset(node: InSet) -> Compiled:
    numbers_ = tuple(v for v in node.values if type(v) is float)
    texts = tuple(v for v in node.values if type(v) is str)
    flags = tuple(v for v in node.values if type(v) is bool)
    parts: list[tuple[Callable[[Any], tuple[Any, Any]] | None, Callable[[Any], Any]]] = []
    if numbers_:
        parts.append((None, _isin_numbers(numbers_, node.negated)))
    if texts:
        parts.append((_as_text, _isin_objects(texts, node.negated)))
    if flags:
        parts.append((_as_flag, _isin_objects(flags, node.negated)))
    leaves_ = [
        _number_leaf(node.ref, test) if normalize is None else _masked_leaf(node.ref, normalize, test)
        for normalize, test in parts
    ]
    # A value has one type, so at most one part can hold: ``or`` them (also for ``not in``).
    return leaves_[0] if len(leaves_) == 1 else _or(leaves_)


def _compile_leaf(node: Expr) -> Compiled:
    if isinstance(node, Compare):
        value = node.value
        if type(value) is float:
            return _number_leaf(node.ref, _number_test(node.op, value))
        normalize = _as_text if type(value) is str else _as_flag
        return _masked_leaf(node.ref, normalize, _equality_test(node.op, value))
    if isinstance(node, Between):
        low, high = node.low, node.high
        return _number_leaf(node.ref, lambda x: (x >= low) & (x <= high))
    if isinstance(node, InSet):
        return _compile_inset(node)
    if isinstance(node, Truthy):
        return _number_leaf(node.ref, lambda x: x > 0)
    raise TypeError(f"not a rule node: {node!r}")


# ---- connectives ----------------------------------------------------------------------------
def _and(parts: list[Compiled]) -> Compiled:
    def conj(values: Mapping[FeatureRef, Any]) -> Any:
        acc: Any = True
        for part in parts:
            x = part(values)
            if x is False:  # scalar short cut; evaluate() broadcasts it for columns
                return False
            if x is True:
                continue
            acc = x if acc is True else np.logical_and(acc, x)
        return acc

    return conj


def _or(parts: list[Compiled]) -> Compiled:
    def disj(values: Mapping[FeatureRef, Any]) -> Any:
        acc: Any = False
        for part in parts:
            x = part(values)
            if x is True:
                return True
            if x is False:
                continue
            acc = x if acc is False else np.logical_or(acc, x)
        return acc

    return disj


def _not(part: Compiled) -> Compiled:
    def neg(values: Mapping[FeatureRef, Any]) -> Any:
        x = part(values)
        if x is True:
            return False
        if x is False:
            return True
        return np.logical_not(x)

    return neg


def compile_expr(expr: Expr) -> Compiled:
    """Compile ``expr`` once into a callable ``values -> bool | ndarray``."""
    if isinstance(expr, Const):
        value = expr.value
        return lambda values: value
    if isinstance(expr, Not):
        return _not(compile_expr(expr.expr))
    if isinstance(expr, And):
        return _and([compile_expr(item) for item in expr.items])
    if isinstance(expr, Or):
        return _or([compile_expr(item) for item in expr.items])
    # Leaves return Python bools for scalars (normalization makes sure of it), which the
    # connectives' ``is True``/``is False`` shortcuts rely on for speed (not for correctness).
    return _compile_leaf(expr)


def compiled(rule: Rule) -> Compiled:
    """The rule's compiled evaluator (built on first use, then cached on the rule)."""
    fn = rule._compiled
    if fn is None:
        fn = compile_expr(rule.expr)
        object.__setattr__(rule, "_compiled", fn)
    return fn


def evaluate(rule: Rule, values: Mapping[FeatureRef, Any]) -> Any:
    """Evaluate ``rule`` over ``values`` (each ref → a scalar, or each ref → an array of length n).

    Scalars in → ``bool`` out. numpy arrays in → a bool array of length n out, element i being
    exactly what the scalar evaluation of row i gives. Missing values (absent key, ``None``,
    NaN, or a value of the wrong type) make comparisons false; ``not`` of such a comparison
    is true (see the module docstring).
    """
    fn = rule._compiled or compiled(rule)
    result = fn(values)
    if type(result) is np.ndarray:
        return result
    # A constant answer over columns still has to be a column (the rule's own refs may be absent;
    # then the first value says which mode we are in, since all are columns or none is).
    for column in (*(values.get(ref) for ref in rule.refs), next(iter(values.values()), None)):
        if type(column) is np.ndarray and column.ndim == 1:
            return np.full(len(column), bool(result))
    return bool(result)
