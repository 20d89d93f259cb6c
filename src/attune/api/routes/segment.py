"""Segment-compatible ingestion: the Tracking API that Segment and RudderStack SDKs call.

The write key is the Basic-auth user name (any API key with the ``ingest`` scope). The
mapping of messages onto native events lives in :mod:`attune.events.segment_compat`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from attune.api.auth import IngestKey
from attune.api.body import read_json
from attune.api.models import RejectionOut
from attune.api.problems import problem
from attune.api.responses import JSONResponse
from attune.errors import AttuneError, ValidationFailed
from attune.events.segment_compat import map_messages, parse_sent_at, segment_errors
from attune.ingest.body import batch_array
from attune.ingest.service import IngestReport
from attune.runtime import Runtime


class SegmentRoute(APIRoute):
    """A route whose error answers also carry Segment's ``code`` and ``message`` members.

    The SDKs read ``code`` and ``message`` from an error body to raise their ``APIError``
    with the status; RudderStack's raises ``KeyError`` instead when they are missing. The
    answer stays ``application/problem+json`` (these are extension members, RFC 9457).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler (dependencies included, so auth errors too)."""
        handler = super().get_route_handler()

        async def segment_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AttuneError as exc:
                code = exc.title.lower().replace(" ", "_")
                response = problem(
                    exc.status, exc.title, exc.message, exc.errors, code=code, message=exc.message
                )
                if exc.status == 401:
                    response.headers["WWW-Authenticate"] = 'Basic realm="attune"'
                return response

        return segment_handler


router = APIRouter(prefix="/v1", tags=["segment"], route_class=SegmentRoute)


class SegmentMessageIn(BaseModel):
    """One Segment message (documentation only; see the mapping table in the docs)."""

    model_config = ConfigDict(extra="allow")
    messageId: str | None = None
    # Segment's own API accepts numeric ids and turns them into strings; so does Attune.
    userId: str | int | float | None = Field(None, description="Known user id (numbers become strings).")
    anonymousId: str | int | float | None = Field(None, description="Device id (numbers become strings).")
    timestamp: str | None = None
    context: dict[str, Any] | None = None


class SegmentBatchIn(BaseModel):
    """Body of ``POST /v1/batch`` (documentation only; other fields are ignored)."""

    model_config = ConfigDict(extra="allow")
    batch: list[SegmentMessageIn] = Field(..., description="Segment messages, each with its own 'type'.")
    sentAt: str | None = Field(None, description="When the client sent the batch (clock-skew correction).")
    context: dict[str, Any] | None = Field(None, description="Context shared by every message.")


class SegmentResponse(BaseModel):
    """Answer of a Segment-compatible call: Segment's ``success`` plus the native report."""

    success: bool
    accepted: int
    duplicates: int
    rejected: list[RejectionOut]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body"},
    401: {"description": "Unknown write key"},
    413: {"description": "Too large"},
    422: {"description": "Not a Segment body"},
}


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    "/batch",
    response_model=SegmentResponse,
    dependencies=[IngestKey],
    openapi_extra=_body_doc(SegmentBatchIn),
    responses=_RESPONSES,
)
async def post_batch(request: Request) -> JSONResponse:
    """Ingest a Segment batch; each message says its own type."""
    limits = request.app.state.runtime.settings.ingest
    received_at = time.time()
    body = await read_json(request, limits.max_body_bytes)
    messages = batch_array(body, "batch", limits.max_batch_events, unit="messages", per="batch")
    batch_context = body.get("context")
    if batch_context is not None and not isinstance(batch_context, dict):
        raise ValidationFailed("context must be an object", errors=["context: must be an object"])
    return await _ingest(
        request,
        messages,
        received_at=received_at,
        sent_at=_sent_at(body),
        batch_context=batch_context,
        message_type=None,
    )


async def _single(request: Request, message_type: str) -> JSONResponse:
    limits = request.app.state.runtime.settings.ingest
    received_at = time.time()
    body = await read_json(request, limits.max_body_bytes)
    if not isinstance(body, dict):
        raise ValidationFailed(
            f"the body must be one {message_type} message (a JSON object)", errors=["body: must be an object"]
        )
    # A single message's own sentAt is read by the mapping (it is a message field here).
    return await _ingest(
        request, [body], received_at=received_at, sent_at=None, batch_context=None, message_type=message_type
    )


def _sent_at(body: dict[str, Any]) -> float | None:
    try:
        return parse_sent_at(body.get("sentAt"))
    except ValueError as exc:
        raise ValidationFailed(f"sentAt is not a time: {exc}", errors=[str(exc)]) from None


async def _ingest(
    request: Request,
    messages: list[Any],
    *,
    received_at: float,
    sent_at: float | None,
    batch_context: dict[str, Any] | None,
    message_type: str | None,
) -> JSONResponse:
    runtime = request.app.state.runtime
    mapped = map_messages(
        messages,
        received_at=received_at,
        sent_at=sent_at,
        batch_context=batch_context,
        message_type=message_type,
    )
    report = await run_in_threadpool(_ingest_events, runtime, mapped.events, received_at)
    rejected = [{"index": index, "errors": errors} for index, errors in mapped.rejected]
    for rejection in report.rejected:
        rejected.append(
            {
                "index": mapped.positions[rejection.index],
                "errors": segment_errors(rejection.errors, mapped.origins[rejection.index]),
            }
        )
    rejected.sort(key=lambda entry: entry["index"])
    return JSONResponse(
        {"success": True, "accepted": report.accepted, "duplicates": report.duplicates, "rejected": rejected}
    )


def _ingest_events(runtime: Runtime, events: list[Any], received_at: float) -> IngestReport:
    """Ingest mapped events in an ingest worker when one is ready, else here."""
    workers = runtime.ingest_workers
    if workers is not None:
        report = workers.ingest_events(events, source="segment", now=received_at)
        if report is not None:
            return report
    return runtime.ingest.ingest(events, source="segment", now=received_at)


_SINGLE = {
    "response_model": SegmentResponse,
    "dependencies": [IngestKey],
    "openapi_extra": _body_doc(SegmentMessageIn),
    "responses": _RESPONSES,
}


@router.post("/track", **_SINGLE)
async def post_track(request: Request) -> JSONResponse:
    """Ingest one Segment track message (an action: "Product Viewed", "Order Completed", …)."""
    return await _single(request, "track")


@router.post("/identify", **_SINGLE)
async def post_identify(request: Request) -> JSONResponse:
    """Ingest one Segment identify message (traits of a person)."""
    return await _single(request, "identify")


@router.post("/page", **_SINGLE)
async def post_page(request: Request) -> JSONResponse:
    """Ingest one Segment page message (a page view)."""
    return await _single(request, "page")


@router.post("/screen", **_SINGLE)
async def post_screen(request: Request) -> JSONResponse:
    """Ingest one Segment screen message (an app screen view)."""
    return await _single(request, "screen")


@router.post("/alias", **_SINGLE)
async def post_alias(request: Request) -> JSONResponse:
    """Ingest one Segment alias message (merge previousId into userId)."""
    return await _single(request, "alias")


@router.post("/group", **_SINGLE)
async def post_group(request: Request) -> JSONResponse:
    """Ingest one Segment group message (a person joins an account or organisation)."""
    return await _single(request, "group")
