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
        event = self._accept_plain(raw, now, default_source)
        if event is not None:
            return event
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

    def _accept_plain(self, raw: dict, now: float, default_source: str | None) -> Event | None:
        """The normalized event when ``raw`` is a plain, clean and valid event, else ``None``.

        The fast path for the common event, one pass and no intermediate objects. It never
        reports: anything unusual, anything the full path would trim, and anything it would
        refuse answers ``None``, and the caller takes the full path (which words the errors).
        For every event it accepts it returns what the full path returns; every check below
        mirrors one of the full path's and is at least as strict
        (``tests/events/test_normalize_fast.py`` compares the two on generated events).
        The order matches the full path's too (shapes first, then values), so an exception
        a Python caller's odd value raises (``float()`` of a huge int) is raised by both.
        """
        if not raw.keys() <= _EVENT_FIELDS:
            return None
        get = raw.get
        limits = self.limits
        max_string = limits.max_string_length
        max_id = limits.max_id_length
        # Shapes: the trees must be plain and need no trimming (context: see _plain_context).
        raw_context = get("context")
        if raw_context is None:
            context: dict[str, Any] = {}
        else:
            context = _plain_context(raw_context, max_string)
            if context is None:
                return None
        properties = get("properties")
        if properties is None:
            properties = {}
        elif type(properties) is dict and _is_clean(properties, 0, max_string):
            properties = properties.copy()  # an exact dict (checked above)
        else:
            return None
        traits = get("traits")
        if traits is not None:
            if type(traits) is not dict or not _is_clean(traits, 0, max_string):
                return None
            traits = traits.copy()
        event_type = get("type")
        if type(event_type) is not str:
            return None
        event_id = get("event_id")
        if event_id is not None:
            if type(event_id) is not str:
                return None
            event_id = _clean_id(event_id, max_id)
            if event_id is None:
                return None
        user_id = get("user_id")
        if user_id is not None:
            user_id = _clean_id(user_id, max_id)
            if user_id is None:
                return None
        anonymous_id = get("anonymous_id")
        if anonymous_id is not None:
            anonymous_id = _clean_id(anonymous_id, max_id)
            if anonymous_id is None:
                return None
        if user_id is None and anonymous_id is None:
            return None
        item_id = get("item_id")
        if item_id is not None:
            item_id = _clean_id(item_id, max_id)
            if item_id is None:
                return None

        # Values.
        event_type = canonical_type(event_type)
        if event_type is None or event_type == "alias":
            return None  # an alias's properties.previous_id has checks of its own
        value = get("value")
        if value is not None:
            if type(value) is not float and type(value) is not int:
                return None
            value = float(value)
            if not math.isfinite(value):
                return None
        timestamp = get("timestamp")
        if timestamp is None:
            timestamp = now
        else:
            kind = type(timestamp)
            if kind is not str and kind is not float and kind is not int:
                return None
            try:
                timestamp = parse_timestamp(timestamp)
            except ValueError:
                return None
            if not limits.min_timestamp <= timestamp <= now + limits.max_future_seconds:
                return None
        if properties and len(orjson.dumps(properties)) > limits.max_properties_bytes:
            return None

        if default_source and "source" not in context:
            context["source"] = default_source
        # A clean string (see _plain_context): stripping, as the full path does, changes nothing.
        session_id = context.pop("session_id", None) or None
        # Positional: twice as fast as keywords for this dataclass. The order is Event's field
        # order; the fast-versus-full tests would catch a mismatch.
        return Event(
            event_id or uuid.uuid4().hex,  # event_id
            event_type,  # type
            timestamp,  # timestamp
            now,  # received_at
            user_id,  # user_id
            anonymous_id,  # anonymous_id
            item_id,  # item_id
            value,  # value
            session_id,  # session_id
            context,  # context
            properties,  # properties
            traits,  # traits
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
            # Unclean context (strings to trim, bad values) takes the model path, whose
            # dump is a deep copy: the caller's nested objects are never changed in place.
            context = _plain_context(raw_context, self.limits.max_string_length)
            if context is None:
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
_CONTEXT_FIELD_SET = frozenset(_CONTEXT_FIELDS)
_PAGE_FIELDS = tuple(PageIn.model_fields)
_PAGE_FIELD_SET = frozenset(_PAGE_FIELDS)
_OPTIONAL_STR = frozenset({str, type(None)})
_OPTIONAL_ID = frozenset({str, int, type(None)})
_OPTIONAL_NUMBER = frozenset({int, float, type(None)})
_OPTIONAL_TIME = frozenset({str, int, float, type(None)})
# ContextIn's typed fields in declared order, with the plain type each takes: dicts, strings,
# or (None) the page, handled on its own.
_CONTEXT_KINDS = tuple(
    (name, dict if name in ("device", "geo") else None if name == "page" else str) for name in _CONTEXT_FIELDS
)


def _is_clean(node: Any, depth: int, max_string: int) -> bool:
    """See :meth:`EventNormalizer._is_clean`; ``depth`` is the nesting level of ``node``.

    This runs for every event's context and properties, so it is written for the interpreter:
    the common scalar children are checked inline (as :func:`_is_clean_string` and
    :func:`_is_clean_scalar` do), only containers cost a call.
    """
    if depth > 10:
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
            if len(child) > max_string or child.strip() != child:
                return False
        elif kind is int:
            if not _MIN_JSON_INT <= child <= _MAX_JSON_INT:
                return False
        elif kind is dict or kind is list:
            if not _is_clean(child, depth + 1, max_string):
                return False
        elif kind is float:
            if not math.isfinite(child):
                return False
        elif child is not None and kind is not bool:
            return False
    return True


def _is_clean_string(text: str, max_string: int) -> bool:
    """A string value that ``_check_string`` leaves unchanged and unreported (nothing to trim)."""
    return len(text) <= max_string and text.strip() == text


def _is_clean_child(value: Any, level: int, max_string: int) -> bool:
    """:func:`_is_clean` for one value inside a container at ``level - 1``."""
    kind = type(value)
    if kind is str:
        return _is_clean_string(value, max_string)
    if kind is dict or kind is list:
        return _is_clean(value, level, max_string)
    return _is_clean_scalar(value, kind)


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


def _plain_context(raw: Any, max_string: int) -> dict[str, Any] | None:
    """``ContextIn.model_validate(raw).model_dump(exclude_none=True)`` for plain, clean input, else ``None``.

    Same keys in the same order: declared fields first, then extras; ``None`` values dropped.
    "Clean" means :func:`_is_clean` holds for the result, so the tree checks would neither
    change nor report anything; it is checked here, in the same pass, value by value.
    """
    if type(raw) is not dict:
        return None
    get = raw.get
    context: dict[str, Any] = {}
    for name, kind in _CONTEXT_KINDS:
        value = get(name)
        if value is None:
            continue
        if kind is str:
            # Inline _is_clean_string: most of the context is strings.
            if type(value) is not str or len(value) > max_string or value.strip() != value:
                return None
        elif kind is dict:
            # _is_clean checks the keys are strings, as pydantic's dict[str, Any] requires.
            if type(value) is not dict or not _is_clean(value, 1, max_string):
                return None
            value = value.copy()
        else:
            value = _plain_page(value, max_string)
            if value is None:
                return None
        context[name] = value
    # Every key of raw is a declared field with a value unless the lengths differ.
    if len(context) != len(raw) and not _copy_extras(raw, context, _CONTEXT_FIELD_SET, 1, max_string):
        return None
    return context


def _copy_extras(raw: dict, into: dict[str, Any], declared: frozenset[str], depth: int,
                 max_string: int) -> bool:
    """Copy ``raw``'s undeclared, non-None keys into ``into``; False when the full path must decide.

    Extras sit ``depth`` levels down (context 1, page 2) for the nesting limit.
    """
    for key, extra in raw.items():
        # Pydantic refuses a key that is not a string even when its value is None.
        if type(key) is not str:
            return False
        if extra is not None and key not in declared:
            if not _is_clean_child(extra, depth, max_string):
                return False
            into[key] = extra
    return True


def _plain_page(raw: Any, max_string: int) -> dict[str, Any] | None:
    """The ``page`` part of :func:`_plain_context` (a :class:`PageIn`), nested one level down."""
    if type(raw) is not dict:
        return None
    get = raw.get
    page: dict[str, Any] = {}
    for field in _PAGE_FIELDS:
        text = get(field)
        if text is not None:
            if type(text) is not str or len(text) > max_string or text.strip() != text:
                return None
            page[field] = text
    # Extras, or fields set to None (as in _plain_context).
    if len(page) != len(raw) and not _copy_extras(raw, page, _PAGE_FIELD_SET, 2, max_string):
        return None
    return page


def _clean_id(raw: Any, max_length: int) -> str | None:
    """``EventNormalizer._id`` of a string or int that it accepts unreported, else ``None``."""
    kind = type(raw)
    if kind is str:
        text = raw.strip()
    elif kind is int:
        text = str(raw).strip()
    else:
        return None
    # Printable text has no control characters (they are all unprintable).
    if text and len(text) <= max_length and text.isprintable():
        return text
    return None


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _safe_iso(ts: float) -> str:
    try:
        return iso(ts)
    except (OverflowError, ValueError, OSError):
        return f"{ts:.6g}"
