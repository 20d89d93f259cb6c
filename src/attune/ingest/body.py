"""The body of ``POST /v1/events``: checked as a whole, then ingested event by event.

Shared by the serving process and the ingest workers (:mod:`attune.ingest.workers`), so a
body gets the same answer wherever it is handled.
"""

from __future__ import annotations

from attune.api.body import parse_json
from attune.errors import PayloadTooLarge, ValidationFailed
from attune.ingest.service import IngestReport, IngestService

#: Top-level fields a body may carry beside ``events`` (Segment-style SDKs add ``sentAt``).
_ALLOWED = frozenset({"events", "sentAt", "sent_at"})


def ingest_events_body(service: IngestService, raw: bytes) -> IngestReport:
    """Parse and check a ``POST /v1/events`` body, then ingest its events."""
    body = parse_json(raw)
    if not isinstance(body, dict) or "events" not in body:
        raise ValidationFailed(
            'the body must be an object with an "events" array', errors=["events: is required"]
        )
    raw_events = body["events"]
    if not isinstance(raw_events, list):
        raise ValidationFailed("events must be an array", errors=["events: must be an array"])
    limit = service.limits.max_batch_events
    if len(raw_events) > limit:
        raise PayloadTooLarge(f"{len(raw_events)} events in one request; the limit is {limit}")
    extra = sorted(set(body) - _ALLOWED)
    if extra:
        raise ValidationFailed(
            "unknown fields in the body", errors=[f"{name}: unknown field" for name in extra]
        )
    return service.ingest(raw_events)
