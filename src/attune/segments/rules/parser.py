"""Text → :class:`Rule`: lark parses, a transformer builds the AST, errors say where and why.

The rule language is declarative data, never code: nothing here calls ``eval``; a name is
only ever looked up in the fixed tables below, so ``__import__(…)``, ``os.system(…)``,
template or SQL fragments are parse errors like any other typo.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import lark
from lark import Token, v_args

from attune.features.refs import FeatureRef
from attune.segments.rules.errors import RuleError
from attune.segments.rules.grammar import GRAMMAR
from attune.segments.rules.nodes import (
    NUMERIC_KINDS,
    ORDERING_OPS,
    And,
    Between,
    Compare,
    Const,
    Expr,
    InSet,
    Not,
    Or,
    Rule,
    Truthy,
    Value,
    depth,
    leaves,
)

#: Longest rule text accepted (a rule is a sentence, not a program).
MAX_RULE_LENGTH = 10_000
#: Deepest nesting accepted (keeps the compiled evaluator and renderer well inside Python's stack).
MAX_DEPTH = 64
#: Seconds per window unit.
UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Functions a rule may call. Besides these, a named feature may take a window:
#: ``frequency(window=7d)`` (nothing else: any other call is an unknown function).
FUNCTIONS = ("count", "sum", "distinct", "exists", "segment")


def _unknown_function(name: str) -> str:
    return (
        f"unknown function '{name}': expected one of {', '.join(FUNCTIONS)} "
        "(or a feature over a window, like frequency(window=7d))"
    )


_WINDOW = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd])$")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


@dataclass(frozen=True, slots=True)
class _Path:
    parts: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class _Kwarg:
    name: Token
    value: Token


@dataclass(frozen=True, slots=True)
class _Call:
    name: Token
    args: tuple[Any, ...]
    end: int


@dataclass(frozen=True, slots=True)
class _Operand:
    ref: FeatureRef
    pos: int
    label: str


class _Fault(Exception):
    """A fault found while building the AST; :func:`parse_rule` adds the text and line/column."""

    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


class _Build(lark.Transformer):
    """Builds AST nodes while the LALR parser reduces (no recursion, however deep the rule)."""

    @staticmethod
    def fail(reason: str, pos: int) -> _Fault:
        return _Fault(reason, pos)

    # ---- structure --------------------------------------------------------------------------
    def start(self, children: list[Expr]) -> Expr:
        return children[0]

    @v_args(inline=True)
    def negation(self, expr: Expr) -> Expr:
        return Not(expr)

    def and_expr(self, items: list[Expr]) -> Expr:
        return And(tuple(items))

    def or_expr(self, items: list[Expr]) -> Expr:
        return Or(tuple(items))

    @v_args(inline=True)
    def const(self, token: Token) -> Expr:
        return Const(token.type == "TRUE")

    # ---- operands ---------------------------------------------------------------------------
    def path(self, parts: list[Token]) -> _Path:
        self._not_keyword(parts[0])
        for part in parts:
            if part.startswith("__"):
                # Defence in depth: names are only ever data keys, but dunders have no business here.
                raise self.fail(f"'{part}': names starting with '__' are reserved", part.start_pos)
        return _Path(tuple(parts))

    def _not_keyword(self, token: Token) -> None:
        # The contextual lexer reads a keyword as a name where no keyword fits ("or x > 1").
        if token in _KEYWORDS:
            raise self.fail(f"'{token}' is a keyword, not a name", token.start_pos)

    @v_args(inline=True)
    def kwarg(self, name: Token, value: Token) -> _Kwarg:
        return _Kwarg(name, value)

    def call(self, children: list[Any]) -> _Call:
        name, *args = children
        self._not_keyword(name)
        args = [a for a in args if a is not None]
        windowed_feature = bool(args) and all(isinstance(a, _Kwarg) and a.name == "window" for a in args)
        if name not in FUNCTIONS and not windowed_feature:
            raise self.fail(_unknown_function(name), name.start_pos)
        if name.startswith("__"):
            raise self.fail(f"'{name}': names starting with '__' are reserved", name.start_pos)
        return _Call(name, tuple(args), 0)

    @v_args(inline=True)
    def operand(self, item: _Path | _Call) -> _Operand:
        if isinstance(item, _Call):
            if item.name == "exists":
                raise self.fail(
                    "exists(...) is a condition, not a number; compare count(...) instead",
                    item.name.start_pos,
                )
            return self._call_ref(item)
        return self._path_ref(item)

    def _path_ref(self, path: _Path) -> _Operand:
        parts = path.parts
        head = parts[0]
        label = ".".join(parts)
        if len(parts) == 1:
            return _Operand(FeatureRef("feature", name=str(head)), head.start_pos, label)
        if len(parts) == 2 and head in ("trait", "context"):
            return _Operand(FeatureRef(str(head), name=str(parts[1])), parts[1].start_pos, label)  # type: ignore[arg-type]
        if head in ("trait", "context"):
            raise self.fail(
                f"'{label}': {head} attributes have one name, like {head}.{parts[1]}", parts[2].start_pos
            )
        raise self.fail(
            f"unknown name '{label}': expected a feature name, trait.<name> or context.<name>", head.start_pos
        )

    def _call_ref(self, call: _Call) -> _Operand:
        name = call.name
        if name not in FUNCTIONS:  # a named feature over a window: frequency(window=7d)
            if len(call.args) > 1:
                raise self.fail("'window' is given twice", call.args[1].name.start_pos)
            window = self._window(call.args[0].value)
            return _Operand(
                FeatureRef("feature", name=str(name), window_seconds=window), name.start_pos, str(name)
            )
        positional = [a for a in call.args if not isinstance(a, _Kwarg)]
        keywords = [a for a in call.args if isinstance(a, _Kwarg)]
        if name == "segment":
            return self._segment_ref(call, positional, keywords)
        if not positional:
            pos = keywords[0].name.start_pos if keywords else name.end_pos
            raise self.fail(f"{name}(...) needs an event type first, like {name}(view)", pos)
        if call.args[0] is not positional[0]:
            raise self.fail(
                "the event type comes first, before window= or category=", self._pos(call.args[0])
            )
        if len(positional) > 1:
            raise self.fail(
                f"{name}(...) takes one event type; give window= and category= by name",
                self._pos(positional[1]),
            )
        event, field, pos = self._event(name, positional[0])
        window: float | None = None
        category: str | None = None
        seen: set[str] = set()
        for kw in keywords:
            if kw.name in seen:
                raise self.fail(f"'{kw.name}' is given twice", kw.name.start_pos)
            seen.add(str(kw.name))
            if kw.name == "window":
                window = self._window(kw.value)
            elif kw.name == "category":
                if kw.value.type != "STRING":
                    raise self.fail(
                        'category takes a quoted string, like category="drama"', kw.value.start_pos
                    )
                category = self._string(kw.value)
            else:
                raise self.fail(
                    f"unknown argument '{kw.name}': expected window= or category=", kw.name.start_pos
                )
        kind = "count" if name == "exists" else str(name)
        ref = FeatureRef(kind, event_type=event, field=field, window_seconds=window, category=category)  # type: ignore[arg-type]
        return _Operand(ref, pos, f"{name}(...)")

    def _event(self, function: str, arg: Any) -> tuple[str, str | None, int]:
        if isinstance(arg, Token):  # a quoted event type
            return self._string(arg), None, arg.start_pos
        parts = arg.parts
        if function == "sum":
            if len(parts) != 2:
                raise self.fail(
                    "sum(...) needs an event field, like sum(purchase.value)",
                    parts[-1].end_pos if len(parts) == 1 else parts[2].start_pos,
                )
            return str(parts[0]), str(parts[1]), parts[0].start_pos
        if len(parts) != 1:
            raise self.fail(f"{function}(...) takes an event type, like {function}(view)", parts[1].start_pos)
        return str(parts[0]), None, parts[0].start_pos

    def _segment_ref(self, call: _Call, positional: list[Any], keywords: list[_Kwarg]) -> _Operand:
        if keywords:
            raise self.fail("segment(...) takes only a segment name", keywords[0].name.start_pos)
        if len(positional) != 1 or not isinstance(positional[0], Token):
            pos = self._pos(positional[0]) if positional else call.name.end_pos
            raise self.fail('segment(...) takes one quoted segment name, like segment("drama_fans")', pos)
        token = positional[0]
        name = self._string(token)
        if not name.strip():
            raise self.fail("the segment name is empty", token.start_pos)
        return _Operand(FeatureRef("segment", name=name), token.start_pos, f'segment("{name}")')

    @staticmethod
    def _pos(item: Any) -> int:
        if isinstance(item, Token):
            return item.start_pos
        if isinstance(item, _Kwarg):
            return item.name.start_pos
        return item.parts[0].start_pos

    def _window(self, token: Token) -> float:
        if token.type == "STRING":
            raise self.fail("window takes a length without quotes, like window=7d", token.start_pos)
        match = _WINDOW.match(token)
        if match is None:
            if token.startswith("-") or re.match(r"^\+?0*\.?0*[smhd]?$", token):
                raise self.fail(f"window '{token}' must be a positive length, like 7d", token.start_pos)
            raise self.fail(
                f"bad window '{token}': expected a positive number and a unit s, m, h or d, like 7d",
                token.start_pos,
            )
        seconds = float(match.group(1)) * UNITS[match.group(2)]
        if seconds <= 0:
            raise self.fail(f"window '{token}' must be a positive length, like 7d", token.start_pos)
        if not math.isfinite(seconds):
            raise self.fail(f"window '{token}' is too long", token.start_pos)
        return seconds

    # ---- constants --------------------------------------------------------------------------
    def _string(self, token: Token) -> str:
        body = token[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                nxt = body[i + 1]
                if nxt not in _ESCAPES:
                    raise self.fail(f"unknown escape '\\{nxt}' in string", token.start_pos + 1 + i)
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def _number(self, token: Token) -> float:
        number = float(token)
        if not math.isfinite(number):
            raise self.fail(f"number '{token}' is out of range", token.start_pos)
        return number

    def _value(self, token: Token) -> Value:
        if token.type == "NUMBER":
            return self._number(token)
        if token.type == "STRING":
            return self._string(token)
        return token.type == "TRUE"

    def _check_type(self, operand: _Operand, token: Token, after: str) -> Value:
        value = self._value(token)
        if isinstance(value, float):
            return value
        if operand.ref.kind in NUMERIC_KINDS:
            raise self.fail(
                f"expected a number after '{after}' ({operand.label} is a number)", token.start_pos
            )
        return value

    # ---- conditions -------------------------------------------------------------------------
    @v_args(inline=True)
    def compare(self, operand: _Operand, op: Token, literal: Token) -> Expr:
        if op in ORDERING_OPS and literal.type != "NUMBER":
            raise self.fail(f"expected a number after '{op}'", literal.start_pos)
        value = self._check_type(operand, literal, str(op))
        return Compare(operand.ref, str(op), value, pos=operand.pos)  # type: ignore[arg-type]

    @v_args(inline=True)
    def between(self, operand: _Operand, low: Token, high: Token) -> Expr:
        lo, hi = self._number(low), self._number(high)
        if lo > hi:
            raise self.fail(
                f"empty range: {low} is greater than {high}; write the smaller bound first", low.start_pos
            )
        return Between(operand.ref, lo, hi, pos=operand.pos)

    def literals(self, tokens: list[Token]) -> list[Token]:
        return tokens

    def _members(self, operand: _Operand, literals: list[Token], keyword: str) -> tuple[Value, ...]:
        return tuple(self._check_type(operand, token, keyword) for token in literals)

    @v_args(inline=True)
    def isin(self, operand: _Operand, literals: list[Token]) -> Expr:
        return InSet(operand.ref, self._members(operand, literals, "in"), False, pos=operand.pos)

    @v_args(inline=True)
    def notin(self, operand: _Operand, literals: list[Token]) -> Expr:
        return InSet(operand.ref, self._members(operand, literals, "not in"), True, pos=operand.pos)

    @v_args(inline=True)
    def predicate(self, call: _Call) -> Expr:
        if call.name not in ("exists", "segment"):
            raise self.fail(
                f"{call.name}(...) is a number: compare it, like {call.name}(...) >= 1", call.name.start_pos
            )
        # (a named feature over a window, ``frequency(window=7d)``, is a number too: refused above)
        operand = self._call_ref(call)
        return Truthy(operand.ref, pos=operand.pos)


_PARSER = lark.Lark(GRAMMAR, parser="lalr", maybe_placeholders=True, transformer=_Build())

# ---- error translation ----------------------------------------------------------------------
_DESCRIPTIONS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "TRUE": "true",
    "FALSE": "false",
    "DURATION": "a window length like 7d",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "_DOT": "'.'",
    "_EQ": "'='",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "_IN": "'in'",
    "_BETWEEN": "'between'",
    "$END": "the end of the rule",
}
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*$")
_KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
_LAST_TOKEN = re.compile(
    r"""(==|!=|>=|<=|[<>=(),.]|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[A-Za-z0-9_.+-]+)\s*$"""
)


def _describe(expected: set[str]) -> str:
    names = set(expected)
    words: list[str] = []
    if "OP" in names:
        names -= {"OP", "_BETWEEN", "_IN", "_NOT"}
        words.append("a comparison (==, !=, >, >=, <, <=, between, in, not in)")
    if {"NUMBER", "STRING", "TRUE", "FALSE"} <= names:
        names -= {"NUMBER", "STRING", "TRUE", "FALSE"}
        words.append("a value (a number, a quoted string, true or false)")
    if {"NAME", "_LPAR"} <= names:
        names -= {"NAME", "_LPAR", "_NOT", "TRUE", "FALSE"}
        words.append("a condition")
    order = list(_DESCRIPTIONS)
    for name in sorted(names, key=lambda n: order.index(n) if n in order else len(order)):
        words.append(_DESCRIPTIONS.get(name, name))
    if len(words) <= 1:
        return "".join(words) or "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _after(text: str, pos: int) -> str:
    """`` after '<previous token>'`` for messages, or nothing at the start of the rule."""
    match = _LAST_TOKEN.search(text[:pos])
    return f" after '{match.group(1)}'" if match else ""


def _translate(text: str, error: lark.exceptions.UnexpectedInput) -> RuleError:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        pos = error.pos_in_stream
        char = text[pos]
        if char in "\"'":
            return RuleError("unterminated string: the closing quote is missing", text=text, position=pos)
        if char == "=":
            return RuleError("a single '=' is not a comparison: use '=='", text=text, position=pos)
        shown = repr(char)
        return RuleError(
            f"unexpected character {shown}: expected {_describe(set(error.allowed or ()))}",
            text=text,
            position=pos,
        )
    assert isinstance(error, lark.exceptions.UnexpectedToken)
    token = error.token
    # ``accepts`` asks the parser which tokens really lead on (``expected`` is LALR's merged set).
    expected = set(error.accepts or error.expected)
    if token.type == "_RPAR" and "$END" in expected:
        return RuleError("unbalanced ')': there is no '(' to close", text=text, position=token.start_pos)
    stack = getattr(getattr(error.interactive_parser, "parser_state", None), "value_stack", None) or [None]
    last = stack[-1]
    if isinstance(last, Token) and last.type == "NAME" and last in _KEYWORDS:
        # A keyword where only a name fits was read as a name ("or x > 1"); that is the fault.
        return RuleError(f"'{last}' is a keyword, not a name", text=text, position=last.start_pos)
    if token.type == "_LPAR" and isinstance(last, Token) and last.type == "NAME":
        # ``os.system(…)``: a dotted name called like a function.
        dotted = _DOTTED.search(text[: last.end_pos])
        start = dotted.start() if dotted else last.start_pos
        return RuleError(_unknown_function(text[start : last.end_pos]), text=text, position=start)
    for item in stack:
        # A call still open when the error struck (``__import__("os").system``): its name is the fault.
        if (
            isinstance(item, Token)
            and item.type == "NAME"
            and item not in FUNCTIONS
            and text[item.end_pos :].lstrip().startswith("(")
        ):
            return RuleError(_unknown_function(item), text=text, position=item.start_pos)
    if token.type == "_EQ":
        return RuleError("a single '=' is not a comparison: use '=='", text=text, position=token.start_pos)
    if token.type == "NAME" and token.lower() in _KEYWORDS and token.lower() != token:
        return RuleError(
            f"'{token}': keywords are lower case, write '{token.lower()}'",
            text=text,
            position=token.start_pos,
        )
    if token.type == "$END":
        pos = len(text)
        found = "found the end of the rule"
    else:
        pos = token.start_pos
        found = f"found '{token}'"
    return RuleError(f"expected {_describe(expected)}{_after(text, pos)}, {found}", text=text, position=pos)


def parse_rule(text: str) -> Rule:
    """Parse a segment rule (syntax in DESIGN.md "Segment definitions").

    Raises :class:`RuleError` (HTTP 422) with the 0-based ``position``, ``line`` and ``column``
    of the first fault.
    """
    if not isinstance(text, str):
        raise RuleError(f"a rule is a string, not {type(text).__name__}")
    if not text.strip():
        raise RuleError("the rule is empty", text=text, position=0)
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(
            f"the rule is longer than {MAX_RULE_LENGTH} characters", text=text, position=MAX_RULE_LENGTH
        )
    try:
        expr: Expr = _PARSER.parse(text)  # type: ignore[assignment]  # the transformer builds the AST
    except _Fault as fault:
        raise RuleError(fault.reason, text=text, position=fault.pos) from None
    except lark.exceptions.UnexpectedInput as error:
        raise _translate(text, error) from None
    if depth(expr) > MAX_DEPTH:
        raise RuleError(f"the rule is nested more than {MAX_DEPTH} levels deep", text=text, position=0)
    refs = frozenset(leaf.ref for leaf in leaves(expr))
    segments = frozenset(ref.name for ref in refs if ref.kind == "segment" and ref.name is not None)
    return Rule(text=text, expr=expr, refs=refs, segments=segments)


def rule_from_expr(expr: Expr) -> Rule:
    """A :class:`Rule` for an expression built in code (its text is the canonical rendering)."""
    from attune.segments.rules.render import render

    refs = frozenset(leaf.ref for leaf in leaves(expr))
    segments = frozenset(ref.name for ref in refs if ref.kind == "segment" and ref.name is not None)
    return Rule(text=render(expr), expr=expr, refs=refs, segments=segments)
