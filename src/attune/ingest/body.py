"""The body of ``POST /v1/events``: checked as a whole, then ingested event by event.

Shared by the serving process and the ingest workers (:mod:`attune.ingest.workers`), so a
body gets the same answer wherever it is handled.
"""

from __future__ import annotations

from typing import Any

from attune.api.body import parse_json
from attune.errors import PayloadTooLarge, ValidationFailed
from attune.ingest.service import IngestReport, IngestService

#: Top-level fields a body may carry beside ``events`` (Segment-style SDKs add ``sentAt``).
_ALLOWED = frozenset({"events", "sentAt", "sent_at"})


def batch_array(body: Any, key: str, limit: int, *, unit: str, per: str) -> list[Any]:
    """``body[key]``, checked: the body is an object holding an array of at most ``limit``
    entries there (the message says "``n unit`` in one ``per``" when there are more)."""
    if not isinstance(body, dict) or key not in body:
        raise ValidationFailed(f'the body must be an object with a "{key}" array', errors=[f"{key}: is required"])
    entries = body[key]
    if not isinstance(entries, list):
        raise ValidationFailed(f"{key} must be an array", errors=[f"{key}: must be an array"])
    if len(entries) > limit:
        raise PayloadTooLarge(f"{len(entries)} {unit} in one {per}; the limit is {limit}")
    return entries


def ingest_events_body(service: IngestService, raw: bytes) -> IngestReport:
    """Parse and check a ``POST /v1/events`` body, then ingest its events."""
    body = parse_json(raw)
    raw_events = batch_array(body, "events", service.limits.max_batch_events, unit="events", per="request")
    extra = sorted(set(body) - _ALLOWED)
    if extra:
        raise ValidationFailed(
            "unknown fields in the body", errors=[f"{name}: unknown field" for name in extra]
        )
    return service.ingest(raw_events)
