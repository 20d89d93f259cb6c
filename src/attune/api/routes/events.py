"""Native event ingestion and the published event schema."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import IngestKey
from attune.api.body import read_body
from attune.api.models import EventsRequest, IngestResponse
from attune.api.responses import JSONResponse
from attune.events.schema import event_json_schema
from attune.ingest.body import ingest_events_body
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
    # Parsing a batch takes milliseconds: done in an ingest worker process (or a thread, when
    # there is none) with the rest, it never holds up the event loop and the requests
    # it serves meanwhile.
    report = await run_in_threadpool(_ingest_body, runtime, raw)
    if wait and report.last_offset:
        await run_in_threadpool(runtime.pipeline.wait_for, report.last_offset)
    return JSONResponse(report.to_dict())


def _ingest_body(runtime: Runtime, raw: bytes) -> IngestReport:
    """Ingest a body in an ingest worker when one is ready (and the body is large enough), else here."""
    workers = runtime.ingest_workers
    if workers is not None and len(raw) >= runtime.settings.ingest.worker_min_body_bytes:
        report = workers.ingest_body(raw)
        if report is not None:
            return report
    return ingest_events_body(runtime.ingest, raw)


@router.get("/schema/event.json", tags=["events"])
async def event_schema() -> JSONResponse:
    """The JSON Schema of a native event."""
    return JSONResponse(event_json_schema(), media_type="application/schema+json")
