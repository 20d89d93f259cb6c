"""Native event ingestion and the published event schema."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import IngestKey
from attune.api.body import parse_json, read_body
from attune.api.models import EventsRequest, IngestResponse
from attune.api.responses import JSONResponse
from attune.errors import PayloadTooLarge, ValidationFailed
from attune.events.schema import event_json_schema
from attune.ingest.service import IngestReport
from attune.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    response_model=IngestResponse,
    dependencies=[IngestKey],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventsRequest.model_json_schema()}},
        }
    },
    responses={400: {"description": "Malformed body"}, 413: {"description": "Too large"}},
)
async def post_events(
    request: Request, wait: bool = Query(False, description="Answer once profiles reflect these events.")
) -> JSONResponse:
    """Ingest up to 1,000 events; good events are kept even when others are rejected."""
    runtime = request.app.state.runtime
    raw = await read_body(request, runtime.settings.ingest.max_body_bytes)
    # Parsing a batch takes milliseconds: done in the worker thread with the rest, it never
    # holds up the event loop (and the single-event requests it serves meanwhile).
    report = await run_in_threadpool(_ingest_body, runtime, raw)
    if wait and report.last_offset:
        await run_in_threadpool(runtime.pipeline.wait_for, report.last_offset)
    return JSONResponse(report.to_dict())


def _ingest_body(runtime: Runtime, raw: bytes) -> IngestReport:
    """Parse and check a ``POST /v1/events`` body, then ingest its events."""
    limits = runtime.settings.ingest
    body = parse_json(raw)
    if not isinstance(body, dict) or "events" not in body:
        raise ValidationFailed(
            'the body must be an object with an "events" array', errors=["events: is required"]
        )
    raw_events = body["events"]
    if not isinstance(raw_events, list):
        raise ValidationFailed("events must be an array", errors=["events: must be an array"])
    if len(raw_events) > limits.max_batch_events:
        raise PayloadTooLarge(
            f"{len(raw_events)} events in one request; the limit is {limits.max_batch_events}"
        )
    extra = sorted(set(body) - {"events", "sentAt", "sent_at"})
    if extra:
        raise ValidationFailed(
            "unknown fields in the body", errors=[f"{name}: unknown field" for name in extra]
        )
    return runtime.ingest.ingest(raw_events)


@router.get("/schema/event.json", tags=["events"])
async def event_schema() -> JSONResponse:
    """The JSON Schema of a native event."""
    return JSONResponse(event_json_schema(), media_type="application/schema+json")
