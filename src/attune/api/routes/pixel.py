"""The tracking pixel: page views and e-mail opens from an ``<img>`` tag."""

from __future__ import annotations

import base64
import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from attune.api.auth import presented_key

router = APIRouter(prefix="/v1", tags=["events"])
log = logging.getLogger(__name__)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_FIELDS = {"type", "user_id", "anonymous_id", "item_id", "event_id", "timestamp"}
_SHORT = {
    "t": "type",
    "uid": "user_id",
    "aid": "anonymous_id",
    "iid": "item_id",
    "eid": "event_id",
    "ts": "timestamp",
}


def pixel_event(request: Request) -> dict:
    """Build a native event from the query string and request headers.

    Query keys: ``type`` (default page_view), ``user_id``/``uid``, ``anonymous_id``/``aid``,
    ``item_id``, ``event_id``, ``timestamp``, ``url``, ``referrer``, ``campaign``; any other
    key (except the write key) becomes a property.
    """
    params = request.query_params
    event: dict = {"type": "page_view"}
    properties: dict = {}
    for name, value in params.items():
        field = _SHORT.get(name, name)
        if field in ("key", "writeKey"):
            continue
        if field in _FIELDS:
            # isascii: "²" passes isdigit() but int() refuses it.
            event[field] = (
                int(value) if field == "timestamp" and value.isascii() and value.isdigit() else value
            )
        elif field not in ("url", "referrer"):
            properties[field] = value
    page = {k: params[k] for k in ("url", "referrer") if k in params}
    if not page.get("referrer") and request.headers.get("referer"):
        page["referrer"] = request.headers["referer"]
    context: dict = {"ip": request.client.host if request.client else None}
    if request.headers.get("user-agent"):
        context["user_agent"] = request.headers["user-agent"]
    if page:
        context["page"] = page
    event["context"] = {k: v for k, v in context.items() if v}
    if properties:
        event["properties"] = properties
    return event


def _documented_parameters() -> list[dict]:
    # Read from the raw query string (any other key becomes a property), so documented by hand.
    names = {
        "type": "Event type (default page_view); t for short.",
        "user_id": "Known user id; uid for short.",
        "anonymous_id": "Device id; aid for short.",
        "item_id": "Item id; iid for short.",
        "event_id": "Dedupe key; eid for short.",
        "timestamp": "Epoch seconds or ISO 8601; ts for short.",
        "url": "Page URL.",
        "referrer": "Referring URL.",
        "campaign": "Campaign name (kept as a property).",
        "key": "A write key with the ingest scope (or writeKey).",
    }
    return [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in names.items()
    ]


@router.get(
    "/pixel.gif",
    response_class=Response,
    responses={200: {"description": "A 1×1 transparent GIF", "content": {"image/gif": {}}}},
    openapi_extra={"parameters": _documented_parameters()},
)
async def pixel(request: Request) -> Response:
    """Record a page view or e-mail open; always answers a 1×1 GIF, even when the event is refused."""
    runtime = request.app.state.runtime
    secret = presented_key(request)
    key = runtime.keys.verify(secret) if secret else None
    if key is not None and key.allows("ingest"):
        try:
            report = await run_in_threadpool(runtime.ingest.ingest, [pixel_event(request)], source="pixel")
        except Exception:  # an <img> tag must get its image even when recording fails
            log.exception("pixel event could not be recorded")
        else:
            if report.rejected:
                log.info("pixel event rejected: %s", report.rejected[0].errors)
    return Response(
        GIF,
        media_type="image/gif",
        headers={"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"},
    )
