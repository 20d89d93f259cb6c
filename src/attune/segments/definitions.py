"""Segment definitions: what a segment is, reading them from API bodies and files, and how they relate.

A definition is data: a name, a parsed :class:`Rule` (``None`` for segments learnt from
data), a priority and an optional exclusive group. This module reads definitions (one PUT
body, or a YAML/JSON file of many), orders them so referenced segments are evaluated first,
and resolves exclusive groups. Every error names the segment and the field at fault.
"""

from __future__ import annotations

import difflib
import heapq
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from attune.errors import BadRequest
from attune.segments.rules import Rule, RuleError, leaves, parse_rule

SegmentKind = Literal["rule", "learnt"]
#: Segment names appear in URLs and in ``segment("…")`` references.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
#: Consent purposes are identifiers (``marketing``, ``personalization`` …).
PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FIELDS = ("rule", "priority", "group", "description", "purpose", "kind")
MAX_DESCRIPTION = 2000
_PRIORITY_RANGE = (-(2**31), 2**31 - 1)  # fits an INTEGER column


@dataclass(frozen=True)
class SegmentDefinition:
    """One segment: its rule (``None`` when learnt), priority, exclusive group and purpose.

    ``priority``: within one ``group`` a person holds only the highest-priority matching
    segment. ``purpose="marketing"``: only people who consented to that purpose may hold it.
    """

    name: str
    rule: Rule | None
    priority: int = 0
    group: str | None = None
    description: str = ""
    purpose: str | None = None
    kind: SegmentKind = "rule"


def _fault(name: str, field: str | None, reason: str) -> RuleError:
    where = f"segment '{name}'" + (f", field '{field}'" if field else "")
    return RuleError(reason, prefix=f"{where}: ")


def check_name(name: Any) -> str:
    """``name`` if it is a valid segment name, else :class:`RuleError` saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise RuleError(
            f"segment name {shown!r} is invalid: use 1-64 letters, digits, '_', '-' or '.', "
            "not starting with '-' or '.'"
        )
    return name


def _integer(name: str, field: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise _fault(name, field, f"expected an integer, got {json.dumps(value, default=str)}")
    low, high = _PRIORITY_RANGE
    if not low <= value <= high:
        raise _fault(name, field, f"must be between {low} and {high}")
    return value


def _optional_text(name: str, field: str, value: Any, pattern: re.Pattern[str], what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _fault(name, field, f"expected {what}, got {json.dumps(value, default=str)}")
    return value


def parse_definition(name: str, mapping: Any) -> SegmentDefinition:
    """A definition from its PUT body (``rule``, ``priority``, ``group``, ``description``, ``purpose``).

    ``kind`` may be ``"learnt"`` (then there is no rule). Unknown fields are refused, so a
    typo such as ``priorty`` does not silently fall back to the default.
    """
    name = check_name(name)
    if not isinstance(mapping, Mapping):
        raise _fault(name, None, f"expected an object with the fields {', '.join(FIELDS)}")
    for key in mapping:
        if key == "name":
            if mapping[key] != name:
                raise _fault(name, "name", f"does not match the segment name ({mapping[key]!r})")
            continue
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(FIELDS)}"
            raise _fault(name, str(key), f"unknown field{hint}")
    kind = mapping.get("kind", "rule")
    if kind not in ("rule", "learnt"):
        raise _fault(name, "kind", f"expected 'rule' or 'learnt', got {json.dumps(kind, default=str)}")
    text = mapping.get("rule")
    rule: Rule | None = None
    if kind == "learnt":
        if text is not None:
            raise _fault(name, "rule", "a learnt segment has no rule (its members come from a model)")
    elif not isinstance(text, str):
        reason = "is required" if text is None else f"expected a string, got {json.dumps(text, default=str)}"
        raise _fault(name, "rule", reason)
    else:
        try:
            rule = parse_rule(text)
        except RuleError as error:
            raise error.within(f"segment '{name}', field 'rule': ") from None
    description = mapping.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise _fault(name, "description", "expected a string")
    if len(description) > MAX_DESCRIPTION:
        raise _fault(name, "description", f"longer than {MAX_DESCRIPTION} characters")
    return SegmentDefinition(
        name=name,
        rule=rule,
        priority=_integer(name, "priority", mapping.get("priority", 0)),
        group=_optional_text(name, "group", mapping.get("group"), NAME_PATTERN, "a group name"),
        description=description,
        purpose=_optional_text(
            name, "purpose", mapping.get("purpose"), PURPOSE_PATTERN, "a purpose identifier"
        ),
        kind=kind,
    )


def parse_definitions(data: Any, *, source: str = "definitions") -> list[SegmentDefinition]:
    """Definitions from loaded YAML/JSON: a list of objects with ``name``, or a mapping name → spec.

    A top-level ``{"segments": [...]}`` wrapper is accepted too. Names must be unique.
    """
    if isinstance(data, Mapping) and set(data) == {"segments"} and isinstance(data["segments"], list):
        data = data["segments"]
    items: list[tuple[Any, Any]]
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, list):
        items = []
        for index, entry in enumerate(data):
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise RuleError(f"{source}: entry {index + 1} needs a 'name' field")
            items.append((entry["name"], entry))
    else:
        raise RuleError(f"{source}: expected a list of segments or a mapping of name to segment")
    definitions: list[SegmentDefinition] = []
    seen: set[str] = set()
    for name, spec in items:
        definition = parse_definition(check_name(name), spec)
        if definition.name in seen:
            raise _fault(definition.name, None, "defined more than once")
        seen.add(definition.name)
        definitions.append(definition)
    return definitions


def load_definitions(path: str | Path) -> list[SegmentDefinition]:
    """Definitions from a YAML or JSON file (``.json`` is read as JSON, anything else as YAML)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadRequest(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise BadRequest(f"cannot read {path}: not UTF-8 text") from None
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except json.JSONDecodeError as error:
        raise RuleError(f"{path}: line {error.lineno}, column {error.colno}: {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RuleError(f"{path}: {where}{problem}") from None
    return parse_definitions(data, source=str(path))


def _as_mapping(
    defs: Mapping[str, SegmentDefinition] | Iterable[SegmentDefinition],
) -> dict[str, SegmentDefinition]:
    if isinstance(defs, Mapping):
        return dict(defs)
    return {d.name: d for d in defs}


def dependency_order(defs: Mapping[str, SegmentDefinition] | Iterable[SegmentDefinition]) -> list[str]:
    """Segment names with every referenced segment before the segments that refer to it.

    Deterministic (name order among independent segments). Raises :class:`RuleError` naming
    the unknown segment (with its position in the rule) or the cycle (``a -> b -> a``).
    """
    by_name = _as_mapping(defs)
    needs: dict[str, set[str]] = {}
    for name in sorted(by_name):
        rule = by_name[name].rule
        needs[name] = set(rule.segments) if rule is not None else set()
        assert rule is not None or not needs[name]
        for leaf in leaves(rule.expr) if rule is not None else ():
            target = leaf.ref.name
            if leaf.ref.kind == "segment" and target not in by_name:
                raise RuleError(
                    f"refers to unknown segment '{target}'", text=rule.text, position=leaf.pos
                ).within(f"segment '{name}', field 'rule': ")
    users: dict[str, list[str]] = {name: [] for name in needs}
    waiting = {name: len(deps) for name, deps in needs.items()}
    for name, deps in needs.items():
        for dep in deps:
            users[dep].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) < len(needs):
        raise RuleError(f"cyclic segment references: {' -> '.join(_cycle(needs, set(order)))}")
    return order


def _cycle(needs: Mapping[str, set[str]], done: set[str]) -> list[str]:
    """One cycle among the segments left over by the topological sort (each still needs another)."""
    node = min(name for name in needs if name not in done)
    path: list[str] = []
    index: dict[str, int] = {}
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = min(dep for dep in needs[node] if dep not in done)
    return [*path[index[node] :], node]


def resolve_exclusive(
    matches: Mapping[str, float], defs: Mapping[str, SegmentDefinition]
) -> dict[str, float]:
    """Within each exclusive group keep only the highest-priority matching segment.

    ``matches`` maps segment name → confidence; entries with confidence ≤ 0 are not matches
    and are dropped. Ties in priority go to the first name in alphabetical order. Segments
    without a group (or unknown to ``defs``) are kept as they are.
    """
    winners: dict[str, tuple[int, str]] = {}
    for name, confidence in matches.items():
        if not confidence > 0:
            continue
        definition = defs.get(name)
        if definition is None or definition.group is None:
            continue
        key = (-definition.priority, name)
        best = winners.get(definition.group)
        if best is None or key < best:
            winners[definition.group] = key
    kept = {name for _, name in winners.values()}
    out: dict[str, float] = {}
    for name, confidence in matches.items():
        if not confidence > 0:
            continue
        definition = defs.get(name)
        if definition is None or definition.group is None or name in kept:
            out[name] = confidence
    return out
