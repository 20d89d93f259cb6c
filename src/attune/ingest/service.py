"""The ingest service shared by the HTTP API, the pixel, Segment endpoints and importers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from attune.events.enrich import Enricher, SessionTracker
from attune.events.model import Event
from attune.events.normalize import EventNormalizer
from attune.log.protocol import EventLog
from attune.observability import metrics
from attune.settings import IngestSettings


@dataclass
class Rejection:
    """One rejected event: its position in the request and every reason."""

    index: int
    errors: list[str]


@dataclass
class IngestReport:
    """What happened to a batch."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    last_offset: int = 0
    duplicate_indices: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The answer body of ``POST /v1/events``."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "errors": r.errors} for r in self.rejected],
        }


#: (good events, their request indices, rejections) -> the same, after a transformation.
BatchTransform = Callable[
    [list[Event], list[int], list[Rejection]], tuple[list[Event], list[int], list[Rejection]]
]


class IngestService:
    """Turns raw events into log entries; one bad event never drops its neighbours."""

    def __init__(
        self,
        limits: IngestSettings,
        log: EventLog,
        on_append: Callable[[], None] | None = None,
        transform: BatchTransform | None = None,
        sessions: SessionTracker | None = None,
    ) -> None:
        self.limits = limits
        self.log = log
        self.normalizer = EventNormalizer(limits)
        #: ``sessions``: whose tracker assigns session ids (ingest workers use the serving
        #: process's, so a person's session is one whichever process sees their events).
        self.enricher = Enricher(sessions or SessionTracker(limits.session_timeout_seconds))
        self.on_append = on_append
        #: Applied to every prepared batch before it can reach the log (privacy: consent,
        #: pseudonyms, minimization); may drop events.
        self.transform = transform

    def prepare(
        self, raw_events: Sequence[Any], *, source: str | None = None, now: float | None = None
    ) -> tuple[list[Event], list[int], list[Rejection]]:
        """Validate and enrich; return the good events, their request indices and the rejections."""
        now = time.time() if now is None else now
        good: list[Event] = []
        positions: list[int] = []
        rejected: list[Rejection] = []
        for index, raw in enumerate(raw_events):
            result = self.normalizer.normalize(raw, now=now, default_source=source)
            if isinstance(result, list):
                rejected.append(Rejection(index, result))
                metrics.EVENTS_REJECTED.labels(result[0].split(":", 1)[0].split(".")[0]).inc()
            else:
                good.append(result)
                positions.append(index)
        self.enricher.enrich_many(good)
        if self.transform is not None:
            return self.transform(good, positions, rejected)
        return good, positions, rejected

    def append(self, events: Sequence[Event], *, source: str = "api") -> tuple[int, list[int], int]:
        """Append prepared events durably; return (accepted, duplicate indices, last offset)."""
        if not events:
            return 0, [], 0
        started = time.perf_counter()
        result = self.log.append(events)
        metrics.APPEND_SECONDS.observe(time.perf_counter() - started)
        metrics.EVENTS_ACCEPTED.labels(source).inc(result.accepted)
        if result.duplicate_indices:
            metrics.EVENTS_DUPLICATE.labels(source).inc(len(result.duplicate_indices))
        metrics.LOG_HEAD.set(result.last_offset)
        if result.accepted and self.on_append is not None:
            self.on_append()
        return result.accepted, result.duplicate_indices, result.last_offset

    def ingest(
        self, raw_events: Sequence[Any], *, source: str = "api", now: float | None = None
    ) -> IngestReport:
        """Validate, enrich and append a batch; the report names every rejection."""
        good, positions, rejected = self.prepare(raw_events, source=None if source == "api" else source, now=now)
        accepted, duplicate_idx, last_offset = self.append(good, source=source)
        return IngestReport(
            accepted=accepted,
            duplicates=len(duplicate_idx),
            rejected=rejected,
            last_offset=last_offset,
            duplicate_indices=[positions[i] for i in duplicate_idx],
        )
