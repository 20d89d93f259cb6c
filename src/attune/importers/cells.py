"""Turn file cells into the values native events and items carry.

CSV cells are all text: attribute and trait cells that look like numbers or booleans become
numbers and booleans, ids stay text. Typed files (JSON Lines, Parquet) keep their types,
except that dates become ISO 8601 text and whole-number floats in id columns (what a
pandas integer column with gaps turns into) become integer text.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Integers past 64 bits cannot be stored as JSON numbers by the store; keep them as text.
_INT_LIMIT = 2**63

#: Item attributes whose text holds a ``|``-separated list.
LIST_ATTRIBUTES = frozenset({"genres", "categories", "tags"})


class CellError(ValueError):
    """A cell that cannot become the value its column needs; the message is the reason."""


def convert_text(text: str) -> Any:
    """A CSV attribute or trait cell: number or boolean when it plainly is one, else the text.

    Numbers with leading zeros or a leading ``+`` (postal codes, phone numbers) stay text.
    """
    if _INT.fullmatch(text):
        number = int(text)
        return number if abs(number) < _INT_LIMIT else text
    if _FLOAT.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else text
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return text


def plain_value(value: Any) -> Any:
    """A typed value (Parquet, JSON Lines) in a JSON-ready form."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Anything else Arrow hands back (intervals, extension types) is kept as its text.
    return str(value)


def attribute_value(name: str, value: Any, text: bool) -> Any:
    """An item attribute or user trait cell as it is stored."""
    if not text:
        return plain_value(value)
    if name in LIST_ATTRIBUTES:
        return [part.strip() for part in value.split("|") if part.strip()]
    return convert_text(value)


def id_value(value: Any, field: str) -> str:
    """An id cell as text; numbers are allowed, other types are not."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise CellError(f"{field}: must be a string or an integer, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    raise CellError(f"{field}: must be a string or an integer (got {_type_name(value)})")


def number_value(value: Any, field: str) -> int | float:
    """A number cell (``value``): text is parsed, and must be a finite number."""
    if type(value) is str:
        try:
            number = float(value)
        except ValueError:
            raise CellError(f"{field}: {value[:40]!r} is not a number") from None
        if not math.isfinite(number):
            raise CellError(f"{field}: must be a finite number")
        return number
    if isinstance(value, bool):
        raise CellError(f"{field}: must be a number, not a boolean")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, Decimal):
        number = float(value)
    else:
        raise CellError(f"{field}: must be a number (got {_type_name(value)})")
    if isinstance(number, float) and not math.isfinite(number):
        raise CellError(f"{field}: must be a finite number")
    return number


def timestamp_value(value: Any) -> str | int | float:
    """A timestamp cell in a form the event normalizer reads (ISO text or epoch number)."""
    if type(value) is str:
        return value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    raise CellError(f"timestamp: must be ISO 8601 text or epoch seconds (got {_type_name(value)})")


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A ``properties``/``context``/``traits`` cell: a JSON object, given as text or typed."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise CellError(f"{field}: is not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    if not isinstance(value, dict):
        raise CellError(f"{field}: must be a JSON object (got {_type_name(value)})")
    return plain_value(value)


def _iso(value: datetime) -> str:
    # Naive datetimes are taken as UTC, as the event normalizer does for ISO text.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
