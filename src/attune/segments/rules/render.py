"""AST → canonical rule text: ``parse_rule(render(expr)).expr == expr``.

Used to show a rule in one normal form (API answers, conflict reports) and by the
round-trip property test.
"""

from __future__ import annotations

import re

from attune.features.refs import FeatureRef
from attune.segments.rules.nodes import And, Between, Compare, Const, Expr, InSet, Not, Or, Truthy, Value

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _is_name(text: str) -> bool:
    return bool(_NAME.match(text)) and text not in _KEYWORDS


def render_string(text: str) -> str:
    """A double-quoted string literal the parser reads back as ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def render_value(value: Value) -> str:
    """A constant as rule text."""
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, str):
        return render_string(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render_window(seconds: float) -> str:
    """A window length in the largest unit that states it exactly (``604800`` → ``7d``)."""
    for unit, size in _UNITS:
        count = seconds / size
        if count.is_integer() and count * size == seconds:
            return f"{int(count)}{unit}"
    return f"{seconds!r}s"


def _name(text: str) -> str:
    if _is_name(text):
        return text
    raise ValueError(f"{text!r} cannot be written as a name in a rule")


def render_ref(ref: FeatureRef, *, function: str | None = None) -> str:
    """How a rule writes ``ref`` (``count(view, window=7d)``, ``trait.age``, ``segment("x")`` …)."""
    kind = ref.kind
    if kind in ("count", "sum", "distinct"):
        event = ref.event_type or ""
        if kind == "sum":
            first = f"{_name(event)}.{_name(ref.field or '')}"
        else:
            first = event if _is_name(event) else render_string(event)
        args = [first]
        if ref.window_seconds is not None:
            args.append(f"window={render_window(ref.window_seconds)}")
        if ref.category is not None:
            args.append(f"category={render_string(ref.category)}")
        return f"{function or kind}({', '.join(args)})"
    if kind == "segment":
        return f"segment({render_string(ref.name or '')})"
    if kind == "feature":
        if ref.window_seconds is not None:
            return f"{_name(ref.name or '')}(window={render_window(ref.window_seconds)})"
        return _name(ref.name or "")
    return f"{kind}.{_name(ref.name or '')}"


def _wrap(expr: Expr) -> str:
    text = render(expr)
    return f"({text})" if isinstance(expr, (And, Or)) else text


def render(expr: Expr) -> str:
    """Canonical text of ``expr``."""
    if isinstance(expr, Compare):
        return f"{render_ref(expr.ref)} {expr.op} {render_value(expr.value)}"
    if isinstance(expr, Between):
        return f"{render_ref(expr.ref)} between {render_value(expr.low)} and {render_value(expr.high)}"
    if isinstance(expr, InSet):
        keyword = "not in" if expr.negated else "in"
        return f"{render_ref(expr.ref)} {keyword} ({', '.join(render_value(v) for v in expr.values)})"
    if isinstance(expr, Truthy):
        if expr.ref.kind == "count":
            return render_ref(expr.ref, function="exists")
        if expr.ref.kind == "segment":
            return render_ref(expr.ref)
        return f"{render_ref(expr.ref)} > 0"
    if isinstance(expr, Const):
        return "true" if expr.value else "false"
    if isinstance(expr, Not):
        return f"not {_wrap(expr.expr)}"
    if isinstance(expr, And):
        return " and ".join(_wrap(item) for item in expr.items)
    if isinstance(expr, Or):
        return " or ".join(_wrap(item) if isinstance(item, Or) else render(item) for item in expr.items)
    raise TypeError(f"not a rule node: {expr!r}")
