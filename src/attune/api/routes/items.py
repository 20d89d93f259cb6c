"""The item catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import AdminKey, ReadKey
from attune.api.body import read_json
from attune.api.models import ItemOut, ItemsBatchRequest, ItemsBatchResponse
from attune.api.responses import JSONResponse
from attune.catalog.items import Item, check_item
from attune.errors import PayloadTooLarge, ValidationFailed
from attune.events.timestamps import iso

router = APIRouter(prefix="/v1/items", tags=["items"])
MAX_BATCH_ITEMS = 1000


def _item_out(item: Item) -> dict:
    return {"item_id": item.item_id, "attributes": item.attributes, "updated_at": iso(item.updated_at)}


@router.post(
    "/batch",
    response_model=ItemsBatchResponse,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": ItemsBatchRequest.model_json_schema()}}}
    },
)
async def post_items_batch(request: Request) -> JSONResponse:
    """Upsert up to 1,000 items: ``{"items": [{"item_id": ..., "title": ..., ...}]}``."""
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValidationFailed('the body must be {"items": [...]}', errors=["items: must be an array"])
    entries = body["items"]
    if len(entries) > MAX_BATCH_ITEMS:
        raise PayloadTooLarge(f"{len(entries)} items in one request; the limit is {MAX_BATCH_ITEMS}")
    good, rejected = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            rejected.append({"index": index, "errors": ["item: must be an object"]})
            continue
        attrs = {k: v for k, v in entry.items() if k != "item_id"}
        errors = check_item(entry.get("item_id"), attrs)
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            good.append((str(entry["item_id"]), attrs))
    upserted = await run_in_threadpool(runtime.catalog.upsert, good)
    return JSONResponse({"upserted": upserted, "rejected": rejected})


@router.put(
    "/{item_id}",
    response_model=ItemOut,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": 'The item\'s attributes (or {"attributes": {...}}).',
                        "additionalProperties": True,
                    }
                }
            },
        }
    },
)
async def put_item(item_id: str, request: Request) -> JSONResponse:
    """Create or replace one item; the body is its attributes."""
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    if isinstance(body, dict) and isinstance(body.get("attributes"), dict) and len(body) == 1:
        body = body["attributes"]
    errors = check_item(item_id, body)
    if errors:
        raise ValidationFailed("the item was refused", errors=errors)
    await run_in_threadpool(runtime.catalog.upsert, [(item_id, body)])
    item = await run_in_threadpool(runtime.catalog.get, item_id.strip())
    return JSONResponse(_item_out(item))


@router.get("/{item_id}", response_model=ItemOut, dependencies=[ReadKey])
async def get_item(item_id: str, request: Request) -> JSONResponse:
    """One item."""
    item = await run_in_threadpool(request.app.state.runtime.catalog.get, item_id)
    return JSONResponse(_item_out(item))
