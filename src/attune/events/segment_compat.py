"""Map Segment / RudderStack Tracking-API messages onto native Attune events.

Pure functions, no web code: the HTTP routes in :mod:`attune.api.routes.segment` read the
body and hand the messages here; the mapped dicts then take the native ingest path, so
every native rule (limits, dedupe on ``event_id``, enrichment) applies unchanged. Only
native fields are emitted, so unknown Segment fields never cause a rejection.

==========================  ==============================================================
Segment / RudderStack        Native event
==========================  ==============================================================
``messageId``                ``event_id`` (the dedupe key; a re-sent message is a duplicate)
``userId``                   ``user_id`` (numbers become text; ``""`` counts as absent)
``anonymousId``              ``anonymous_id`` (one of ``userId``/``anonymousId`` required)
``type: track`` + ``event``  ``type`` = canonical name of ``event`` ("Product Viewed" ->
                             ``view``, "Product Added" -> ``add_to_cart``, "Order
                             Completed" -> ``purchase``; other names snake_cased, and
                             characters outside ``[A-Za-z0-9_]`` become ``_``)
track ``properties``         ``properties`` (unchanged)
track ``properties.product_id`` / ``sku`` / ``item_id``
                             ``item_id`` (first present, in that order)
track ``properties.value`` / ``revenue`` / ``total`` / ``price`` / ``rating``
                             ``value`` (first finite number, in that order; numeric text
                             counts; for rating events ``rating`` is tried first)
``type: page``               ``type`` = ``page_view``; ``context.page`` = ``context.page``
                             overlaid with ``properties`` ``url``/``referrer``/``title``/
                             ``path``/``search``, plus ``name`` and ``category``
``type: screen``             ``type`` = ``screen_view``; ``name``/``category`` ->
                             ``properties.name``/``properties.category`` (when absent)
``type: identify``           ``type`` = ``identify``; ``traits`` = ``context.traits``
                             overlaid with ``traits`` (RudderStack sends only the former)
``type: alias``              ``type`` = ``alias``; ``user_id`` = ``userId``;
                             ``properties.previous_id`` = ``previousId`` (both required)
``type: group``              ``type`` = ``group``; ``properties.group_id`` = ``groupId``
                             (required); ``properties.group_traits`` = ``traits``
``timestamp``                ``timestamp``
``originalTimestamp``        ``timestamp`` = receivedAt - (``sentAt`` - originalTimestamp)
                             when ``timestamp`` is absent (Segment's clock-skew fix; without
                             ``sentAt`` the original time is used as is; the message's
                             own ``sentAt`` wins over the batch's)
(no time at all)             ``timestamp`` = server time (receivedAt)
``context.ip``               ``context.ip``
``context.userAgent``        ``context.user_agent``
``context.page``             ``context.page`` (url, referrer, title, path, search, …)
``context.device``           ``context.device`` {type, model, manufacturer}; a platform
                             type (``ios``, ``android``) becomes ``type: mobile`` and is
                             kept as ``platform``
``context.location``         ``context.geo`` {city, country, region, lat, lon}
``context.sessionId``        ``context.session_id`` (the native session)
``context.campaign``,        kept in ``context`` under the same names
``locale``, ``timezone``,
``library``, ``app``,
``os``, ``network``,
``screen``, ``referrer``
``context.traits``           merged into ``traits`` on identify; dropped elsewhere (traits
                             change only through identify)
other ``context`` fields     dropped
(everything)                 ``context.source`` = ``"segment"``;
                             ``context.segment`` = {``type``, ``event``} (provenance)
batch ``context``            defaults for every message's ``context`` (message wins)
``integrations``,            ignored, as are any other fields
``channel``, ``writeKey``…
==========================  ==============================================================

A message that cannot be mapped is reported with reasons naming the Segment field
(``"userId: one of userId or anonymousId is required"``); native rejections of mapped
events are translated back to Segment names with :func:`segment_errors`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from attune.events.timestamps import parse_timestamp
from attune.events.types import canonical_type

SEGMENT_TYPES = ("track", "identify", "page", "screen", "alias", "group")
SOURCE = "segment"

ITEM_ID_KEYS = ("product_id", "sku", "item_id")
VALUE_KEYS = ("value", "revenue", "total", "price", "rating")
PAGE_KEYS = ("url", "referrer", "title", "path", "search")
DEVICE_KEYS = ("type", "model", "manufacturer")
# Segment's device.type names a platform; native rules expect a form factor.
MOBILE_PLATFORMS = frozenset({"ios", "android"})
LOCATION_KEYS = {
    "city": "city",
    "country": "country",
    "region": "region",
    "latitude": "lat",
    "longitude": "lon",
}
KEPT_CONTEXT_KEYS = (
    "campaign",
    "locale",
    "timezone",
    "library",
    "app",
    "os",
    "network",
    "screen",
    "referrer",
)

# Native field -> Segment field, for translating native rejections (longest prefix wins).
NATIVE_TO_SEGMENT = {
    "event_id": "messageId",
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "timestamp": "timestamp",
    "context.user_agent": "context.userAgent",
    "context.geo": "context.location",
    "context.session_id": "context.sessionId",
}

_NOT_TYPE_CHARS = re.compile(r"[^A-Za-z0-9_]+")


@dataclass
class MappedBatch:
    """Result of mapping a list of Segment messages.

    ``events[i]`` came from message ``positions[i]``; ``origins[i]`` maps native field
    names of that event to the Segment fields they were taken from (for error messages).
    ``rejected`` holds ``(index, reasons)`` of messages that could not be mapped.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    origins: list[dict[str, str]] = field(default_factory=list)
    rejected: list[tuple[int, list[str]]] = field(default_factory=list)


def parse_sent_at(raw: Any, field_name: str = "sentAt") -> float | None:
    """Epoch seconds of a ``sentAt`` value, ``None`` when absent; ``ValueError`` naming the field."""
    if raw is None:
        return None
    return _parse_time(raw, field_name)


def map_messages(
    messages: list[Any],
    *,
    received_at: float,
    sent_at: float | None = None,
    batch_context: dict[str, Any] | None = None,
    message_type: str | None = None,
) -> MappedBatch:
    """Map every message; one unmappable message never affects its neighbours.

    ``message_type`` forces the type (single-message endpoints); otherwise each message's
    own ``type`` field decides (``/v1/batch``).
    """
    out = MappedBatch()
    for index, message in enumerate(messages):
        origins: dict[str, str] = {}
        result = map_message(
            message,
            received_at=received_at,
            sent_at=sent_at,
            batch_context=batch_context,
            message_type=message_type,
            origins=origins,
        )
        if isinstance(result, list):
            out.rejected.append((index, result))
        else:
            out.events.append(result)
            out.positions.append(index)
            out.origins.append(origins)
    return out


def map_message(
    message: Any,
    *,
    received_at: float,
    sent_at: float | None = None,
    batch_context: dict[str, Any] | None = None,
    message_type: str | None = None,
    origins: dict[str, str] | None = None,
) -> dict[str, Any] | list[str]:
    """One Segment message as a native event dict, or the reasons it cannot be mapped.

    ``origins``, when given, is filled with native field -> Segment field for the fields
    whose source varies (``item_id``, ``value``, ``type``, ``timestamp``).
    """
    if not isinstance(message, dict):
        return [f"message: must be a JSON object, not {_json_type(message)}"]
    origins = {} if origins is None else origins
    errors: list[str] = []
    kind = message_type or message.get("type")
    if kind is None:
        return [f"type: is required (one of {', '.join(SEGMENT_TYPES)})"]
    if not isinstance(kind, str) or kind.strip().lower() not in SEGMENT_TYPES:
        return [f"type: {str(kind)[:40]!r} is not a Segment call type (one of {', '.join(SEGMENT_TYPES)})"]
    kind = kind.strip().lower()

    event: dict[str, Any] = {}
    message_id = _id(message.get("messageId"), "messageId", errors)
    if message_id is not None:
        event["event_id"] = message_id
    user_id = _id(message.get("userId"), "userId", errors)
    anonymous_id = _id(message.get("anonymousId"), "anonymousId", errors)
    if kind == "alias" and user_id is None and "userId" not in _fields(errors):
        errors.append("userId: is required for alias")
    elif user_id is None and anonymous_id is None and not errors:
        errors.append("userId: one of userId or anonymousId is required")
    if user_id is not None:
        event["user_id"] = user_id
    if anonymous_id is not None:
        event["anonymous_id"] = anonymous_id

    properties = _object(message.get("properties"), "properties", errors)
    raw_context = _merged_context(batch_context, message.get("context"), errors)
    context = _context(raw_context, errors)
    provenance: dict[str, Any] = {"type": kind}

    if kind == "track":
        name = message.get("event")
        event_type = _track_type(name, errors)
        origins["type"] = "event"
        if isinstance(name, str):
            provenance["event"] = name.strip()[:200]
        if event_type is not None:
            event["type"] = event_type
            _item_and_value(properties, event_type, event, origins, errors)
    elif kind == "page":
        event["type"] = "page_view"
        context["page"] = _page(context.get("page"), properties, message, errors)
    elif kind == "screen":
        event["type"] = "screen_view"
        for key in ("name", "category"):
            text = _text(message.get(key), key, errors)
            if text is not None:
                properties.setdefault(key, text)
    elif kind == "identify":
        event["type"] = "identify"
        context_traits = _object(raw_context.get("traits"), "context.traits", errors)
        traits = _object(message.get("traits"), "traits", errors)
        event["traits"] = {**context_traits, **traits}
    elif kind == "alias":
        event["type"] = "alias"
        previous_id = _id(message.get("previousId"), "previousId", errors)
        if previous_id is None and "previousId" not in _fields(errors):
            errors.append("previousId: is required for alias")
        properties = {**properties, "previous_id": previous_id}
    elif kind == "group":
        event["type"] = "group"
        group_id = _id(message.get("groupId"), "groupId", errors)
        if group_id is None and "groupId" not in _fields(errors):
            errors.append("groupId: is required for group")
        traits = _object(message.get("traits"), "traits", errors)
        properties = {**properties, "group_id": group_id, "group_traits": traits}

    try:
        event["timestamp"] = _timestamp(message, received_at, sent_at, origins)
    except ValueError as exc:
        errors.append(str(exc))

    if errors:
        return errors
    context["source"] = SOURCE
    context["segment"] = provenance
    event["context"] = context
    if properties:
        event["properties"] = properties
    return event


def segment_errors(errors: list[str], origins: dict[str, str] | None = None) -> list[str]:
    """Rename native field paths in ``"field: reason"`` strings to the Segment fields they came from."""
    table = {**NATIVE_TO_SEGMENT, **(origins or {})}
    renamed = []
    for message in errors:
        path, sep, reason = message.partition(":")
        if not sep:
            renamed.append(message)
            continue
        best = max(
            (k for k in table if path == k or path.startswith((k + ".", k + "["))), key=len, default=None
        )
        if best is not None:
            path = table[best] + path[len(best) :]
        renamed.append(f"{path}:{reason}")
    return renamed


# -- pieces ---------------------------------------------------------------------------


def _track_type(name: Any, errors: list[str]) -> str | None:
    if name is None:
        errors.append("event: is required for track")
        return None
    if not isinstance(name, str):
        errors.append(f"event: must be a string (got {_json_type(name)})")
        return None
    event_type = canonical_type(name) or canonical_type(_NOT_TYPE_CHARS.sub("_", name))
    if event_type is None:
        errors.append(
            f"event: {name[:40]!r} cannot be an event type name (it needs a letter first, "
            "and at most 64 letters, digits or underscores once snake_cased)"
        )
    return event_type


def _item_and_value(
    properties: dict[str, Any],
    event_type: str,
    event: dict[str, Any],
    origins: dict[str, str],
    errors: list[str],
) -> None:
    for key in ITEM_ID_KEYS:
        raw = properties.get(key)
        if raw is None or raw == "":
            continue
        item_id = _id(raw, f"properties.{key}", errors)
        if item_id is not None:
            event["item_id"] = item_id
            origins["item_id"] = f"properties.{key}"
        break
    keys = ("rating", *[k for k in VALUE_KEYS if k != "rating"]) if event_type == "rating" else VALUE_KEYS
    for key in keys:
        number = _number(properties.get(key))
        if number is not None:
            event["value"] = number
            origins["value"] = f"properties.{key}"
            break


def _number(raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return raw if math.isfinite(raw) else None
    if isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _page(
    context_page: dict[str, Any] | None,
    properties: dict[str, Any],
    message: dict[str, Any],
    errors: list[str],
) -> dict[str, Any]:
    """``context.page`` overlaid with the page call's own properties, name and category."""
    page = dict(context_page or {})
    for key in PAGE_KEYS:
        text = _text(properties.get(key), f"properties.{key}", errors)
        if text is not None:
            page[key] = text
    for key in ("name", "category"):
        text = _text(message.get(key), key, errors)
        if text is not None:
            page[key] = text
    return page


def _merged_context(batch_context: Any, message_context: Any, errors: list[str]) -> dict[str, Any]:
    context = _object(message_context, "context", errors)
    if isinstance(batch_context, dict):
        return {**batch_context, **context}
    return context


def _context(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    ip = _text(raw.get("ip"), "context.ip", errors)
    if ip:
        context["ip"] = ip
    user_agent = _text(raw.get("userAgent"), "context.userAgent", errors)
    if user_agent:
        context["user_agent"] = user_agent
    page = raw.get("page")
    if page is not None:
        if isinstance(page, dict):
            context["page"] = {}
            for key, value in page.items():
                if key in (*PAGE_KEYS, "name", "category") and value is not None:
                    text = _text(value, f"context.page.{key}", errors)
                    if text is not None:
                        context["page"][key] = text
        else:
            errors.append(f"context.page: must be an object (got {_json_type(page)})")
    device = _device(raw.get("device"), errors)
    if device:
        context["device"] = device
    geo = _geo(raw.get("location"), errors)
    if geo:
        context["geo"] = geo
    session = raw.get("sessionId")
    if session is not None and session != "":
        session_id = _id(session, "context.sessionId", errors)
        if session_id is not None:
            context["session_id"] = session_id
    for key in KEPT_CONTEXT_KEYS:
        if raw.get(key) is not None:
            context[key] = raw[key]
    return context


def _device(raw: Any, errors: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(f"context.device: must be an object (got {_json_type(raw)})")
        return {}
    device = {key: raw[key] for key in DEVICE_KEYS if raw.get(key) is not None}
    kind = device.get("type")
    if isinstance(kind, str) and kind.strip().lower() in MOBILE_PLATFORMS:
        device["platform"] = kind.strip().lower()
        device["type"] = "mobile"
    return device


def _geo(raw: Any, errors: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(f"context.location: must be an object (got {_json_type(raw)})")
        return {}
    geo: dict[str, Any] = {}
    for source, target in LOCATION_KEYS.items():
        value = raw.get(source)
        if value is None:
            continue
        if target in ("lat", "lon"):
            number = _number(value)
            if number is None:
                errors.append(f"context.location.{source}: must be a number")
                continue
            value = float(number)
        geo[target] = value
    return geo


def _timestamp(
    message: dict[str, Any], received_at: float, batch_sent_at: float | None, origins: dict[str, str]
) -> float:
    if message.get("timestamp") is not None:
        origins["timestamp"] = "timestamp"
        return _parse_time(message["timestamp"], "timestamp")
    if message.get("originalTimestamp") is not None:
        origins["timestamp"] = "originalTimestamp"
        original = _parse_time(message["originalTimestamp"], "originalTimestamp")
        own_sent_at = message.get("sentAt")
        sent_at = _parse_time(own_sent_at, "sentAt") if own_sent_at is not None else batch_sent_at
        if sent_at is None:
            return original
        # Segment's skew correction: the client clock's offset is (sentAt - receivedAt).
        return received_at - (sent_at - original)
    return received_at


def _parse_time(raw: Any, field_name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        # ValueError, not TypeError: callers report every unreadable time the same way.
        raise ValueError(f"{field_name}: must be an ISO 8601 time (got {_json_type(raw)})")  # noqa: TRY004
    try:
        return parse_timestamp(raw)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{field_name}: {exc}") from None


def _id(raw: Any, field_name: str, errors: list[str]) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        errors.append(f"{field_name}: must be a string or a number (got {_json_type(raw)})")
        return None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            errors.append(f"{field_name}: must be a finite number")
            return None
        text = str(int(raw)) if raw.is_integer() else str(raw)
    else:
        text = str(raw).strip()
    return text or None


def _text(raw: Any, field_name: str, errors: list[str]) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        errors.append(f"{field_name}: must be a string (got {_json_type(raw)})")
        return None
    return raw


def _object(raw: Any, field_name: str, errors: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(f"{field_name}: must be an object (got {_json_type(raw)})")
        return {}
    return dict(raw)


def _fields(errors: list[str]) -> set[str]:
    return {message.split(":", 1)[0] for message in errors}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {list: "an array", str: "a string", dict: "an object"}.get(type(value), type(value).__name__)
