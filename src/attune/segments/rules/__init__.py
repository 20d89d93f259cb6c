"""The segment rule language: parse, validate, evaluate (scalars or columns), render, analyse.

>>> rule = parse_rule('count(view, window=7d) >= 3 and context.device == "mobile"')
>>> sorted(ref.column for ref in rule.refs)
['context:device', 'count:view:604800s']

Syntax: DESIGN.md "Segment definitions". Semantics of missing values: :mod:`.evaluator`.
"""

from attune.segments.rules.errors import RuleError
from attune.segments.rules.evaluator import compile_expr, evaluate
from attune.segments.rules.nodes import (
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
    leaves,
)
from attune.segments.rules.parser import parse_rule, rule_from_expr
from attune.segments.rules.render import render, render_ref
from attune.segments.rules.validate import RuleCatalog, validate_rule

__all__ = [
    "And",
    "Between",
    "Compare",
    "Const",
    "Expr",
    "InSet",
    "Not",
    "Or",
    "Rule",
    "RuleCatalog",
    "RuleError",
    "Truthy",
    "compile_expr",
    "evaluate",
    "leaves",
    "parse_rule",
    "render",
    "render_ref",
    "rule_from_expr",
    "validate_rule",
]
