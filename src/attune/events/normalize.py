"""Validate and normalize raw events into domain :class:`Event` objects.

Every problem is reported as ``"field.path: reason"`` so a client can fix the event
without guessing; one bad event never affects its neighbours.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from attune.events.model import Event
from attune.events.schema import ContextIn, EventIn, PageIn
from attune.events.timestamps import iso, parse_timestamp
from attune.events.types import canonical_type
from attune.settings import IngestSettings

# Pydantic reports a union field (``str | int``) once per member, with the member's tag
# appended to the location; these are folded into one message naming the field.
_UNION_TAGS = {"str": "a string", "int": "an integer", "float": "a number"}
_MAX_JSON_INT = 2**64 - 1  # orjson, which writes the log, stores 64-bit integers only
_MIN_JSON_INT = -(2**63)
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f]")


def format_pydantic_errors(exc: ValidationError) -> list[str]:
    """Turn pydantic errors into ``"field.path: reason"`` strings."""
    messages = []
    unions: dict[str, tuple[list[str], str]] = {}
    for err in exc.errors(include_url=False):
        parts = [str(part) for part in err["loc"]]
        if len(parts) > 1 and parts[-1] in _UNION_TAGS and err["type"].endswith("_type"):
            kinds, _ = unions.setdefault(".".join(parts[:-1]), ([], type(err.get("input")).__name__))
            kinds.append(_UNION_TAGS[parts[-1]])
            continue
        loc = ".".join(parts) or "event"
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        elif err["type"] == "missing":
            reason = "is required"
        else:
            reason = err["msg"][0].lower() + err["msg"][1:]
            if "input" in err and err["type"].endswith("_type"):
                reason += f" (got {type(err['input']).__name__})"
        messages.append(f"{loc}: {reason}")
    for loc, (kinds, got) in unions.items():
        if "a number" in kinds and "an integer" in kinds:
            kinds.remove("an integer")
        messages.append(f"{loc}: must be {' or '.join(dict.fromkeys(kinds))} (got {got})")
    return messages


class EventNormalizer:
    """Checks one raw event against the contract and the configured limits."""

    def __init__(self, limits: IngestSettings) -> None:
        self.limits = limits

    def normalize(
        self, raw: Any, *, now: float | None = None, default_source: str | None = None
    ) -> Event | list[str]:
        """Return the normalized event, or the list of reasons it was rejected."""
        now = time.time() if now is None else now
        if not isinstance(raw, dict):
            return [f"event: must be a JSON object, not {_json_type(raw)}"]
        parsed = self._plain(raw)
        if parsed is None:
            try:
                parsed = _Parsed.from_model(EventIn.model_validate(raw))
            except ValidationError as exc:
                return format_pydantic_errors(exc)

        errors: list[str] = []
        user_id = self._id(parsed.user_id, "user_id", errors)
        anonymous_id = self._id(parsed.anonymous_id, "anonymous_id", errors)
        item_id = self._id(parsed.item_id, "item_id", errors)
        if user_id is None and anonymous_id is None and not errors:
            errors.append("user_id: one of user_id or anonymous_id is required")

        event_type = canonical_type(parsed.type)
        if event_type is None:
            errors.append(
                f"type: {parsed.type[:40]!r} is not a valid event type name "
                "(letters, digits and underscores, starting with a letter, at most 64)"
            )

        value: float | None = None
        if parsed.value is not None:
            value = float(parsed.value)
            if not math.isfinite(value):
                errors.append("value: must be a finite number")

        timestamp = now
        if parsed.timestamp is not None:
            try:
                timestamp = parse_timestamp(parsed.timestamp)
            except ValueError as exc:
                errors.append(f"timestamp: {exc}")
            else:
                if timestamp < self.limits.min_timestamp:
                    errors.append(
                        f"timestamp: {iso(timestamp) if timestamp > -6e10 else parsed.timestamp} is before "
                        f"the earliest accepted time {iso(self.limits.min_timestamp)}"
                    )
                elif timestamp > now + self.limits.max_future_seconds:
                    errors.append(
                        f"timestamp: {_safe_iso(timestamp)} is more than "
                        f"{self.limits.max_future_seconds:.0f} s in the future"
                    )

        context = parsed.context
        properties = parsed.properties or {}
        traits = parsed.traits
        if not parsed.context_clean:
            self._check_tree(context, "context", errors)
        before = len(errors)
        self._check_tree(properties, "properties", errors)
        properties_ok = len(errors) == before
        if traits is not None:
            self._check_tree(traits, "traits", errors)
        if properties and properties_ok and len(orjson.dumps(properties)) > self.limits.max_properties_bytes:
            errors.append(f"properties: larger than {self.limits.max_properties_bytes} bytes when serialized")

        if event_type == "alias" and "previous_id" in properties:
            # The profiles consumer merges this id; it follows the rules of every other id.
            previous = properties["previous_id"]
            if isinstance(previous, bool) or not isinstance(previous, str | int):
                errors.append(
                    f"properties.previous_id: must be a string or an integer (got {type(previous).__name__})"
                )
            else:
                self._id(previous, "properties.previous_id", errors)

        event_id = self._id(parsed.event_id, "event_id", errors) if parsed.event_id is not None else None
        if errors:
            return errors
        if default_source and "source" not in context:
            context["source"] = default_source
        session_id = context.pop("session_id", None)
        if isinstance(session_id, str):
            session_id = session_id.strip() or None
        return Event(
            event_id=event_id or uuid.uuid4().hex,
            type=event_type,  # type: ignore[arg-type]  # checked above
            timestamp=timestamp,
            received_at=now,
            user_id=user_id,
            anonymous_id=anonymous_id,
            item_id=item_id,
            value=value,
            session_id=session_id,
            context=context,
            properties=properties,
            traits=traits,
        )

    def _plain(self, raw: dict) -> _Parsed | None:
        """The fields of an event that plainly satisfies :class:`EventIn`, or ``None``.

        A fast path for the common, well-formed event: exact JSON types checked by hand give
        the same fields the pydantic model would, at a fraction of the cost. Anything unusual
        answers ``None`` and goes through the model, which also words the errors.
        """
        if not raw.keys() <= _EVENT_FIELDS:
            return None
        get = raw.get
        event_type = get("type")
        if type(event_type) is not str:
            return None
        for name in ("event_id",):
            if type(get(name)) not in _OPTIONAL_STR:
                return None
        for name in ("user_id", "anonymous_id", "item_id"):
            if type(get(name)) not in _OPTIONAL_ID:
                return None
        if type(get("value")) not in _OPTIONAL_NUMBER or type(get("timestamp")) not in _OPTIONAL_TIME:
            return None
        properties = get("properties")
        traits = get("traits")
        if not (properties is None or _is_str_keyed(properties)) or not (
            traits is None or _is_str_keyed(traits)
        ):
            return None
        raw_context = get("context")
        if raw_context is None:
            context: dict[str, Any] = {}
        else:
            context = _plain_context(raw_context)
            # Unclean context (strings to trim, bad values) takes the model path, whose
            # dump is a deep copy: the caller's nested objects are never changed in place.
            if context is None or not self._is_clean(context, 0):
                return None
        return _Parsed(
            event_id=get("event_id"),
            type=event_type,
            user_id=get("user_id"),
            anonymous_id=get("anonymous_id"),
            item_id=get("item_id"),
            value=get("value"),
            timestamp=get("timestamp"),
            context=context,
            properties=None if properties is None else dict(properties),
            traits=None if traits is None else dict(traits),
            context_clean=True,
        )

    def _id(self, raw: str | int | None, field: str, errors: list[str]) -> str | None:
        if raw is None:
            return None
        text = str(raw).strip()
        if not text:
            errors.append(f"{field}: must not be empty")
            return None
        if len(text) > self.limits.max_id_length:
            errors.append(f"{field}: longer than {self.limits.max_id_length} characters ({len(text)})")
            return None
        # Printable ASCII has no control characters: the regex is only needed for the rest.
        if not (text.isascii() and text.isprintable()) and _CONTROL_CHARS.search(text) is not None:
            errors.append(f"{field}: contains control characters")
            return None
        return text

    def _check_tree(self, node: Any, path: str, errors: list[str], depth: int = 0) -> Any:
        """Trim strings in place and reject oversized strings, non-finite numbers and deep nesting."""
        if depth == 0 and self._is_clean(node, 0):
            # The common case: nothing to trim or report, so skip building a path per value.
            return node
        if depth > 10:
            errors.append(f"{path}: nested more than 10 levels deep")
            return node
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    errors.append(f"{path}: keys must be strings, not {type(key).__name__} ({key!r:.40})")
                elif isinstance(child, str):
                    node[key] = self._check_string(child, f"{path}.{key}", errors)
                else:
                    self._check_tree(child, f"{path}.{key}", errors, depth + 1)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, str):
                    node[index] = self._check_string(child, f"{path}[{index}]", errors)
                else:
                    self._check_tree(child, f"{path}[{index}]", errors, depth + 1)
        elif isinstance(node, float) and not math.isfinite(node):
            errors.append(f"{path}: must be a finite number")
        elif (
            isinstance(node, int)
            and not isinstance(node, bool)
            and not _MIN_JSON_INT <= node <= _MAX_JSON_INT
        ):
            errors.append(f"{path}: integer outside the 64-bit range")
        elif node is not None and not isinstance(node, str | int | float | bool):
            # Python callers (importers) may pass values JSON cannot hold; refuse them here
            # rather than fail the whole batch when the log serializes it.
            errors.append(
                f"{path}: must be a JSON value (string, number, boolean, null, array or object), "
                f"not {type(node).__name__}"
            )
        return node

    def _is_clean(self, node: Any, depth: int) -> bool:
        """True when :meth:`_check_tree` would neither change ``node`` nor report anything.

        Exact types only: anything unusual (subclasses, other types) answers False and takes
        the full, reporting walk.
        """
        return _is_clean(node, depth, self.limits.max_string_length)

    def _check_string(self, text: str, path: str, errors: list[str]) -> str:
        text = text.strip()
        if len(text) > self.limits.max_string_length:
            errors.append(f"{path}: longer than {self.limits.max_string_length} characters ({len(text)})")
        return text


@dataclass(slots=True)
class _Parsed:
    """The shape-checked fields of one event, with ``context`` already a plain dict."""

    event_id: str | None
    type: str
    user_id: str | int | None
    anonymous_id: str | int | None
    item_id: str | int | None
    value: int | float | None
    timestamp: str | int | float | None
    context: dict[str, Any]
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    #: The context is known to pass the tree checks unchanged (the fast path checked it).
    context_clean: bool = False

    @classmethod
    def from_model(cls, model: EventIn) -> _Parsed:
        """The fields of a validated :class:`EventIn`."""
        return cls(
            event_id=model.event_id,
            type=model.type,
            user_id=model.user_id,
            anonymous_id=model.anonymous_id,
            item_id=model.item_id,
            value=model.value,
            timestamp=model.timestamp,
            context=model.context.model_dump(exclude_none=True) if model.context else {},
            properties=model.properties,
            traits=model.traits,
        )


_EVENT_FIELDS = frozenset(EventIn.model_fields)
_CONTEXT_FIELDS = tuple(ContextIn.model_fields)
_PAGE_FIELDS = tuple(PageIn.model_fields)
_OPTIONAL_STR = frozenset({str, type(None)})
_OPTIONAL_ID = frozenset({str, int, type(None)})
_OPTIONAL_NUMBER = frozenset({int, float, type(None)})
_OPTIONAL_TIME = frozenset({str, int, float, type(None)})
# ContextIn's typed fields: plain dicts, or strings (page is handled on its own).
_CONTEXT_DICTS = frozenset({"device", "geo"})


def _is_clean(root: Any, depth: int, max_string: int) -> bool:
    """See :meth:`EventNormalizer._is_clean`: one loop with a stack instead of a call per value.

    This runs for every event's context and properties, so it is written for the interpreter:
    the common scalar children are checked inline, only containers go on the stack.
    """
    stack = [(root, depth)]
    pop, push = stack.pop, stack.append
    while stack:
        node, level = pop()
        if level > 10:
            return False
        kind = type(node)
        if kind is dict:
            for key in node:
                if type(key) is not str:
                    return False
            children = node.values()
        elif kind is list:
            children = node
        elif kind is str:
            return False  # a bare string is checked by its container, as _check_tree does
        else:
            return _is_clean_scalar(node, kind)
        for child in children:
            kind = type(child)
            if kind is str:
                # Untrimmed strings (whitespace at either end) take the reporting walk.
                if len(child) > max_string or (child and (child[0].isspace() or child[-1].isspace())):
                    return False
            elif kind is dict or kind is list:
                push((child, level + 1))
            elif not _is_clean_scalar(child, kind):
                return False
    return True


def _is_clean_scalar(value: Any, kind: type) -> bool:
    if kind is int:
        return _MIN_JSON_INT <= value <= _MAX_JSON_INT
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool


def _is_str_keyed(value: Any) -> bool:
    if type(value) is not dict:
        return False
    for key in value:
        if type(key) is not str:
            return False
    return True


def _plain_context(raw: Any) -> dict[str, Any] | None:
    """``ContextIn.model_validate(raw).model_dump(exclude_none=True)`` for plain input, else ``None``.

    Same keys in the same order: declared fields first, then extras; ``None`` values dropped.
    """
    if type(raw) is not dict:
        return None
    context: dict[str, Any] = {}
    for name in _CONTEXT_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if name == "page":
            if type(value) is not dict:
                return None
            page = {}
            for field in _PAGE_FIELDS:
                text = value.get(field)
                if text is not None:
                    if type(text) is not str:
                        return None
                    page[field] = text
            for key, extra in value.items():
                if extra is not None and key not in page and key not in _PAGE_FIELDS:
                    page[key] = extra
            context[name] = page
        elif name in _CONTEXT_DICTS:
            if not _is_str_keyed(value):
                return None
            context[name] = dict(value)
        elif type(value) is str:
            context[name] = value
        else:
            return None
    for key, extra in raw.items():
        if extra is not None and key not in context and key not in _CONTEXT_FIELDS:
            context[key] = extra
    return context


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _safe_iso(ts: float) -> str:
    try:
        return iso(ts)
    except (OverflowError, ValueError, OSError):
        return f"{ts:.6g}"
