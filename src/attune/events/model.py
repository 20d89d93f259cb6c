"""The domain form of an event, after validation, normalization and enrichment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Event types that carry identity information rather than behaviour.
IDENTITY_TYPES = frozenset({"identify", "alias", "group"})


@dataclass(slots=True)
class Event:
    """One normalized event, ready to be appended to the log.

    ``timestamp`` and ``received_at`` are UTC epoch seconds.
    """

    event_id: str
    type: str
    timestamp: float
    received_at: float
    user_id: str | None = None
    anonymous_id: str | None = None
    item_id: str | None = None
    value: float | None = None
    session_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, omitting empty optional fields."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "timestamp": self.timestamp,
            "received_at": self.received_at,
        }
        for name in ("user_id", "anonymous_id", "item_id", "value", "session_id", "traits"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.context:
            out["context"] = self.context
        if self.properties:
            out["properties"] = self.properties
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Inverse of :meth:`to_dict` (keys are exactly the dataclass fields)."""
        # Keyword construction is several times faster than field-by-field .get() calls,
        # and this runs once per event per consumer lane.
        return cls(**data)


@dataclass(slots=True)
class LoggedEvent:
    """An event as read back from the log, with its offset."""

    offset: int
    event: Event
