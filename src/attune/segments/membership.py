"""Plain values the segment engine hands around: a membership and a change of one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: Why a membership changed: an event, a window sliding past (``lapse``), a bulk
#: re-evaluation, a definition change or removal, an identity merge, a consent change.
Reason = Literal["event", "lapse", "evaluate", "definition", "merge", "consent", "learnt", "replay"]


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


@dataclass(frozen=True, slots=True)
class BulkChange:
    """Many changes of one segment at one instant (a re-evaluation), kept as columns.

    Each group is ``(subject keys, confidences)``; ``exited`` confidences are the ones held
    before. ``snapshot``, when set, is the segment's whole membership after the change
    ``(keys, confidences, since)``: the store writes it as one compressed row instead of one
    row per change, and records the changes as hourly counts only (see ``SegmentStore``).
    """

    segment: str
    entered: tuple[Any, Any]
    exited: tuple[Any, Any]
    updated: tuple[Any, Any]
    at: float
    reason: Reason
    #: The segment's size before the change.
    size_before: int
    snapshot: tuple[Any, Any, Any] | None = None
    #: When each updated membership started (an update keeps it).
    updated_since: Any = None

    def __len__(self) -> int:
        return len(self.entered[0]) + len(self.exited[0]) + len(self.updated[0])

    def changes(self) -> list[Change]:
        """One :class:`Change` per person (exits, then entries, then updates), sizes running."""
        out: list[Change] = []
        size = self.size_before
        for key, confidence in zip(*self.exited, strict=True):
            size -= 1
            out.append(Change(self.segment, str(key), "exit", float(confidence), self.at, self.reason, size))
        for key, confidence in zip(*self.entered, strict=True):
            size += 1
            out.append(Change(self.segment, str(key), "enter", float(confidence), self.at, self.reason, size))
        for key, confidence in zip(*self.updated, strict=True):
            out.append(
                Change(self.segment, str(key), "update", float(confidence), self.at, self.reason, size)
            )
        return out
