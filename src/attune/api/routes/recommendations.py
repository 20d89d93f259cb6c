"""Recommendations for a user."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import ReadKey
from attune.api.models import RecommendationsOut, SimilarItemsOut
from attune.api.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["recommendations"])


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut, dependencies=[ReadKey])
async def recommendations(
    user_id: str,
    request: Request,
    k: int = Query(10, ge=1, le=500, description="How many items."),
    exclude: str | None = Query(None, description="Comma-separated item ids never to return."),
) -> JSONResponse:
    """Top-k items; unknown users get the non-personalized list, never an error."""
    excluded = {part.strip() for part in exclude.split(",") if part.strip()} if exclude else None
    result = await run_in_threadpool(request.app.state.runtime.recommendations.for_user, user_id, k, excluded)
    return JSONResponse(result.to_dict())


@router.get("/items/{item_id}/similar", response_model=SimilarItemsOut, dependencies=[ReadKey])
async def similar_items(
    item_id: str, request: Request, k: int = Query(10, ge=1, le=500, description="How many items.")
) -> JSONResponse:
    """Items similar to ``item_id`` (from the promoted model; popular items when it has no answer)."""
    result = await run_in_threadpool(request.app.state.runtime.recommendations.similar_to, item_id, k)
    return JSONResponse(result)
