"""Protocols of the event log and of consumer positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from attune.events.model import Event, LoggedEvent


@dataclass(slots=True)
class AppendResult:
    """What an append did: how many events were new and which positions were duplicates."""

    accepted: int
    duplicate_indices: list[int] = field(default_factory=list)
    last_offset: int = 0


@runtime_checkable
class EventLog(Protocol):
    """Durable, ordered, deduplicating event log.

    ``append`` returns only after the events are durable (that is what acknowledging means);
    an ``event_id`` already in the log is reported as a duplicate and not appended again.
    Offsets start at 1 and increase; consumers read strictly after a position they keep.
    """

    def append(self, events: Sequence[Event]) -> AppendResult:
        """Append new events durably; report duplicates by their index in ``events``."""
        ...

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` events with offset greater than ``after``, in offset order."""
        ...

    def head(self) -> int:
        """The highest offset written so far (0 when empty)."""
        ...

    def count(self) -> int:
        """Number of events held."""
        ...


class OffsetStore(Protocol):
    """Where each consumer keeps its position in the log."""

    def get(self, consumer: str) -> int:
        """The committed position of ``consumer`` (0 when it has never run)."""
        ...

    def set(self, consumer: str, position: int) -> None:
        """Commit ``position`` for ``consumer``."""
        ...
