"""Validate and normalize raw events into domain :class:`Event` objects.

Every problem is reported as ``"field.path: reason"`` so a client can fix the event
without guessing; one bad event never affects its neighbours.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from attune.events.model import Event
from attune.events.schema import EventIn
from attune.events.timestamps import iso, parse_timestamp
from attune.events.types import canonical_type
from attune.settings import IngestSettings


def format_pydantic_errors(exc: ValidationError) -> list[str]:
    """Turn pydantic errors into ``"field.path: reason"`` strings."""
    messages = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "event"
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        elif err["type"] == "missing":
            reason = "is required"
        else:
            reason = err["msg"][0].lower() + err["msg"][1:]
            if "input" in err and err["type"].endswith("_type"):
                reason += f" (got {type(err['input']).__name__})"
        messages.append(f"{loc}: {reason}")
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
        try:
            parsed = EventIn.model_validate(raw)
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

        context = parsed.context.model_dump(exclude_none=True) if parsed.context else {}
        properties = parsed.properties or {}
        traits = parsed.traits
        self._check_tree(context, "context", errors)
        self._check_tree(properties, "properties", errors)
        if traits is not None:
            self._check_tree(traits, "traits", errors)
        if properties and len(orjson.dumps(properties)) > self.limits.max_properties_bytes:
            errors.append(f"properties: larger than {self.limits.max_properties_bytes} bytes when serialized")

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
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            errors.append(f"{field}: contains control characters")
            return None
        return text

    def _check_tree(self, node: Any, path: str, errors: list[str], depth: int = 0) -> Any:
        """Trim strings in place and reject oversized strings, non-finite numbers and deep nesting."""
        if depth > 10:
            errors.append(f"{path}: nested more than 10 levels deep")
            return node
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, str):
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
        return node

    def _check_string(self, text: str, path: str, errors: list[str]) -> str:
        text = text.strip()
        if len(text) > self.limits.max_string_length:
            errors.append(f"{path}: longer than {self.limits.max_string_length} characters ({len(text)})")
        return text


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _safe_iso(ts: float) -> str:
    try:
        return iso(ts)
    except (OverflowError, ValueError, OSError):
        return f"{ts:.0f}"
