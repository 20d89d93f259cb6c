"""Parse event times into UTC epoch seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

_fromisoformat = datetime.fromisoformat  # looked up once: parsed for every event


def parse_timestamp(raw: str | float) -> float:
    """Return UTC epoch seconds for an ISO 8601 string or an epoch number.

    Epoch numbers are read as seconds, or as milliseconds / microseconds / nanoseconds
    when they are too large to be seconds (above 10^11, the year 5138). ISO strings
    without an offset are taken as UTC.

    Raises ``ValueError`` with a readable reason.
    """
    if isinstance(raw, str):
        text = raw.strip()
        # Most clients send ISO text: try it first when it looks like a date (a failed
        # float() costs an exception per event). "1e9" or "-5" still reach float() below.
        if len(text) >= 10 and text[4] == "-":
            try:
                parsed = _fromisoformat(text)
            except ValueError:
                pass
            else:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.timestamp()
        try:
            return _scale_epoch(float(text))
        except ValueError:
            pass
        try:
            parsed = _fromisoformat(text)
        except ValueError:
            raise ValueError(f"{raw[:40]!r} is neither ISO 8601 nor an epoch number") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return _scale_epoch(float(raw))


def _scale_epoch(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    magnitude = abs(value)
    if magnitude >= 1e17:
        return value / 1e9
    if magnitude >= 1e14:
        return value / 1e6
    if magnitude >= 1e11:
        return value / 1e3
    return value


def iso(ts: float) -> str:
    """ISO 8601 UTC text for epoch seconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
