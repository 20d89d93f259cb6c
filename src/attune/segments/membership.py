"""Plain values the segment engine hands around: a membership and a change of one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Why a membership changed: an event, a window sliding past (``lapse``), a bulk
#: re-evaluation, a definition change or removal, an identity merge, a consent change.
Reason = Literal["event", "lapse", "evaluate", "definition", "merge", "consent", "learnt"]


@dataclass(frozen=True, slots=True)
class Membership:
    """One segment a person holds: with what confidence in [0, 1], since when (epoch seconds)."""

    name: str
    confidence: float
    since: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form with an ISO 8601 ``since``."""
        from attune.events.timestamps import iso

        return {"name": self.name, "confidence": self.confidence, "since": iso(self.since)}


@dataclass(frozen=True, slots=True)
class Change:
    """An entry into or an exit from a segment (a confidence update counts as an entry)."""

    segment: str
    user_key: str
    kind: Literal["enter", "exit", "update"]
    confidence: float
    at: float
    reason: Reason
    #: The segment's size after this change.
    size: int = 0
