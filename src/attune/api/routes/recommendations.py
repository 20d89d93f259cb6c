"""Recommendations for a user and similar items, with business filters.

Both routes answer on the event loop when everything they need is in memory (the usual case:
no thread-pool hop, no database read) and fall back to a worker thread otherwise.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from attune.api.auth import ReadKey
from attune.api.models import RecommendationsOut, SimilarItemsOut
from attune.recommend.filters import Filters

router = APIRouter(prefix="/v1", tags=["recommendations"])

_EXCLUDE = Query(None, description="Comma-separated item ids never to return.")
_CATEGORY = Query(None, description="Comma-separated categories: only items in one of them.")
_EXCLUDE_CATEGORY = Query(None, description="Comma-separated categories never to return.")
_DIVERSITY = Query(0.0, ge=0.0, le=1.0, description="MMR re-ranking: 0 = by relevance only, 1 = most varied.")


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut, dependencies=[ReadKey])
async def recommendations(
    user_id: str,
    request: Request,
    k: int = Query(10, ge=1, le=500, description="How many items."),
    exclude: str | None = _EXCLUDE,
    category: str | None = _CATEGORY,
    exclude_category: str | None = _EXCLUDE_CATEGORY,
    diversity: float = _DIVERSITY,
) -> Response:
    """Top-k items; unknown users get the non-personalized list, never an error."""
    filters = Filters.parse(exclude, category, exclude_category, diversity)
    service = request.app.state.runtime.recommendations
    body = service.try_json(user_id, k, filters)
    if body is not None:
        return Response(body, media_type="application/json")
    result = await run_in_threadpool(service.for_user, user_id, k, None, filters)
    return _json(result.to_dict())


@router.get("/items/{item_id}/similar", response_model=SimilarItemsOut, dependencies=[ReadKey])
async def similar_items(
    item_id: str,
    request: Request,
    k: int = Query(10, ge=1, le=500, description="How many items."),
    exclude: str | None = _EXCLUDE,
    category: str | None = _CATEGORY,
    exclude_category: str | None = _EXCLUDE_CATEGORY,
    diversity: float = _DIVERSITY,
) -> Response:
    """Items similar to ``item_id`` (the promoted model; content similarity for new items; else popular)."""
    filters = Filters.parse(exclude, category, exclude_category, diversity)
    service = request.app.state.runtime.recommendations
    result = service.try_similar_to(item_id, k, filters)
    if result is None:
        result = await run_in_threadpool(service.similar_to, item_id, k, filters)
    return _json(result)
