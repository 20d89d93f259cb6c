"""Turn rows of each import kind into native events or catalog items.

Every row becomes either a draft (a raw native event for the ingest service, or an item for
the catalog) or the list of reasons it cannot be one. Column sets are checked once, before
the first row, so a file with the wrong columns fails fast instead of rejecting every row.

Rows that carry no ``event_id`` get one derived from their content after normalization
(:func:`derived_event_id`), so importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from attune.catalog.items import check_item
from attune.errors import BadRequest
from attune.events.model import Event
from attune.importers.cells import (
    CellError,
    attribute_value,
    convert_text,
    id_value,
    json_object,
    number_value,
    timestamp_value,
)

KINDS = ("events", "interactions", "items", "users")

#: Column names of a headerless interactions file, by its number of columns (MovieLens
#: ``u.data`` is user, item, rating, timestamp).
HEADERLESS_INTERACTIONS = {
    3: ["user_id", "item_id", "timestamp"],
    4: ["user_id", "item_id", "value", "timestamp"],
    5: ["user_id", "item_id", "value", "timestamp", "event_type"],
}

#: Flat native event columns accepted in CSV and Parquet event files.
_EVENT_OBJECTS = ("properties", "context", "traits")
EVENT_COLUMNS = (
    "event_id",
    "type",
    "user_id",
    "anonymous_id",
    "item_id",
    "value",
    "timestamp",
    *_EVENT_OBJECTS,
)
_EVENT_IDS = ("event_id", "user_id", "anonymous_id", "item_id")
_INTERACTION_FIELDS = frozenset(
    {"user_id", "anonymous_id", "item_id", "timestamp", "event_type", "type", "value", "event_id"}
)


@dataclass(slots=True)
class EventDraft:
    """A raw native event built from one row.

    ``derive_id`` is true when the row named no ``event_id``; ``timed`` when it gave a time
    (otherwise the server time is used, and left out of the derived id).
    """

    raw: dict[str, Any]
    derive_id: bool
    timed: bool


@dataclass(slots=True)
class ItemDraft:
    """One catalog item built from one row."""

    item_id: str
    attributes: dict[str, Any]


Draft = EventDraft | ItemDraft


class RowMapper:
    """Maps rows of one import kind; subclasses name the columns they need."""

    kind: str = ""
    required: tuple[str, ...] = ()
    #: True when rows become events (through ingest); false for catalog items.
    emits_events = True

    def check_columns(self, columns: list[str] | None, file_name: str) -> None:
        """Fail fast, naming the column, when a required column is missing."""
        if columns is None:
            return
        for name in self.required:
            if name not in columns:
                found = ", ".join(columns) if columns else "none"
                raise BadRequest(
                    f"{file_name} has no {name!r} column, which {self.kind} imports need "
                    f"(columns found: {found})"
                )

    def map(self, values: dict[str, Any], text: bool) -> Draft | list[str]:
        """The draft of one row, or every reason it cannot be imported."""
        raise NotImplementedError

    def headerless(self, first: list[str]) -> list[str] | None:
        """Column names when ``first`` (a delimited file's first record) is data, not a header."""
        return None


def _take_id(values: dict[str, Any], field: str, errors: list[str], *, required: bool) -> str | None:
    raw = values.get(field)
    if raw is None:
        if required:
            errors.append(f"{field}: is required")
        return None
    try:
        return id_value(raw, field)
    except CellError as exc:
        errors.append(str(exc))
        return None


class InteractionsMapper(RowMapper):
    """``user_id,item_id,timestamp[,event_type][,value]``; other columns become properties.

    The type is ``event_type`` when given, else ``rating`` for rows with a value and ``view``
    for rows without.
    """

    kind = "interactions"
    required = ("user_id", "item_id", "timestamp")

    def headerless(self, first: list[str]) -> list[str] | None:
        """MovieLens-style files: no header, the first cell a number, 3 to 5 columns."""
        if len(first) in HEADERLESS_INTERACTIONS and _is_number(first[0]):
            return HEADERLESS_INTERACTIONS[len(first)]
        return None

    def map(self, values: dict[str, Any], text: bool) -> Draft | list[str]:
        """A native event for one interaction row."""
        errors: list[str] = []
        raw: dict[str, Any] = {}
        user_id = _take_id(values, "user_id", errors, required=True)
        item_id = _take_id(values, "item_id", errors, required=True)
        anonymous_id = _take_id(values, "anonymous_id", errors, required=False)
        event_id = _take_id(values, "event_id", errors, required=False)
        if values.get("timestamp") is None:
            errors.append("timestamp: is required")
        else:
            try:
                raw["timestamp"] = timestamp_value(values["timestamp"])
            except CellError as exc:
                errors.append(str(exc))
        value = None
        if values.get("value") is not None:
            try:
                value = number_value(values["value"], "value")
            except CellError as exc:
                errors.append(str(exc))
        event_type = values.get("event_type", values.get("type"))
        if event_type is None:
            event_type = "rating" if "value" in values else "view"
        elif not isinstance(event_type, str):
            errors.append("event_type: must be text")
        if errors:
            return errors
        raw.update(type=event_type, user_id=user_id, item_id=item_id)
        for name, field_value in (("anonymous_id", anonymous_id), ("event_id", event_id), ("value", value)):
            if field_value is not None:
                raw[name] = field_value
        properties = {
            name: attribute_value(name, cell, text)
            for name, cell in values.items()
            if name not in _INTERACTION_FIELDS
        }
        if properties:
            raw["properties"] = properties
        return EventDraft(raw, derive_id=event_id is None, timed=True)


class UsersMapper(RowMapper):
    """``user_id`` plus trait columns: one ``identify`` event per row, from the source ``import``.

    An optional ``timestamp`` column dates the traits (the import time otherwise); a typed
    row may also nest its traits under ``traits``.
    """

    kind = "users"
    required = ("user_id",)

    def map(self, values: dict[str, Any], text: bool) -> Draft | list[str]:
        """An identify event carrying the row's traits."""
        errors: list[str] = []
        user_id = _take_id(values, "user_id", errors, required=True)
        raw: dict[str, Any] = {"type": "identify", "user_id": user_id, "context": {"source": "import"}}
        if values.get("timestamp") is not None:
            try:
                raw["timestamp"] = timestamp_value(values["timestamp"])
            except CellError as exc:
                errors.append(str(exc))
        rest = {k: v for k, v in values.items() if k not in ("user_id", "timestamp")}
        if not text and set(rest) == {"traits"}:
            try:
                raw["traits"] = json_object(rest["traits"], "traits")
            except CellError as exc:
                errors.append(str(exc))
        else:
            raw["traits"] = {name: attribute_value(name, cell, text) for name, cell in rest.items()}
        if errors:
            return errors
        return EventDraft(raw, derive_id=True, timed="timestamp" in raw)


class ItemsMapper(RowMapper):
    """``item_id`` plus attribute columns (``genres`` as ``a|b|c`` becomes a list)."""

    kind = "items"
    required = ("item_id",)
    emits_events = False

    def __init__(self, max_id_length: int = 256) -> None:
        self.max_id_length = max_id_length

    def map(self, values: dict[str, Any], text: bool) -> Draft | list[str]:
        """The item of one row, checked as the items API checks it."""
        errors: list[str] = []
        item_id = _take_id(values, "item_id", errors, required=True)
        rest = {k: v for k, v in values.items() if k != "item_id"}
        if not text and set(rest) == {"attributes"} and isinstance(rest["attributes"], dict):
            attributes = {name: attribute_value(name, v, False) for name, v in rest["attributes"].items()}
        else:
            attributes = {name: attribute_value(name, cell, text) for name, cell in rest.items()}
        if item_id is not None:
            errors.extend(check_item(item_id, attributes, self.max_id_length))
        if errors:
            return errors
        assert item_id is not None
        return ItemDraft(item_id.strip(), attributes)


class EventsMapper(RowMapper):
    """Native events: JSON Lines objects as given; CSV/Parquet as the flat native columns,
    with ``properties``, ``context`` and ``traits`` as JSON text."""

    kind = "events"
    required = ("type",)

    def check_columns(self, columns: list[str] | None, file_name: str) -> None:
        """Besides ``type``, a column file needs a person column and only native columns."""
        super().check_columns(columns, file_name)
        if columns is None:
            return
        unknown = [name for name in columns if name not in EVENT_COLUMNS]
        if unknown:
            raise BadRequest(
                f"{file_name} has column(s) {', '.join(map(repr, unknown))} that are not native event "
                f"fields (allowed: {', '.join(EVENT_COLUMNS)}); put extra data in a 'properties' column "
                "as JSON text"
            )
        if "user_id" not in columns and "anonymous_id" not in columns:
            raise BadRequest(
                f"{file_name} has neither a 'user_id' nor an 'anonymous_id' column; events need one "
                f"(columns found: {', '.join(columns)})"
            )

    def map(self, values: dict[str, Any], text: bool) -> Draft | list[str]:
        """The row as a raw native event; the event normalizer judges it as the API would."""
        errors: list[str] = []
        raw = dict(values)
        for name in _EVENT_IDS:
            if name in raw and not (text and isinstance(raw[name], str)):
                try:
                    raw[name] = id_value(raw[name], name)
                except CellError as exc:
                    errors.append(str(exc))
        if "value" in raw:
            try:
                raw["value"] = number_value(raw["value"], "value")
            except CellError as exc:
                errors.append(str(exc))
        if "timestamp" in raw and not text:
            try:
                raw["timestamp"] = timestamp_value(raw["timestamp"])
            except CellError as exc:
                errors.append(str(exc))
        for name in _EVENT_OBJECTS:
            if name in raw and (text or isinstance(raw[name], str)):
                try:
                    raw[name] = json_object(raw[name], name)
                except CellError as exc:
                    errors.append(str(exc))
        if errors:
            return errors
        return EventDraft(raw, derive_id=raw.get("event_id") is None, timed="timestamp" in raw)


_MAPPERS: dict[str, Callable[[], RowMapper]] = {
    "events": EventsMapper,
    "interactions": InteractionsMapper,
    "users": UsersMapper,
}


def mapper_for(kind: str, *, max_id_length: int = 256) -> RowMapper:
    """The mapper of an import kind; a clear error for an unknown kind."""
    if kind == "items":
        return ItemsMapper(max_id_length)
    factory = _MAPPERS.get(kind)
    if factory is None:
        raise BadRequest(f"unknown import kind {kind!r}: use one of {', '.join(KINDS)}")
    return factory()


def derived_event_id(event: Event, timed: bool) -> str:
    """A deterministic event id from a normalized event's content.

    Built from what the event says (people, item, type, time when the row gave one, value,
    traits, properties), not from how the file spelled it, so the same interaction imported
    from CSV or Parquet, with epoch or ISO times, gets the same id.
    """
    payload = orjson.dumps(
        [
            event.user_id,
            event.anonymous_id,
            event.item_id,
            event.type,
            event.timestamp if timed else None,
            event.value,
            event.traits,
            event.properties or None,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return "imp-" + hashlib.blake2b(payload, digest_size=16).hexdigest()


def _is_number(text: str) -> bool:
    value = convert_text(text.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)
