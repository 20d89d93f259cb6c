"""The browser tracker script."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(tags=["tracker"])
STATIC = Path(__file__).resolve().parent.parent / "static"


@lru_cache(maxsize=1)
def _script() -> bytes:
    return (STATIC / "attune.js").read_bytes()


@router.get(
    "/tracker.js",
    response_class=Response,
    responses={200: {"description": "The tracker script", "content": {"application/javascript": {}}}},
)
async def tracker() -> Response:
    """The tracker: ``attune.init({host, writeKey}); attune.page(); attune.track(type, props)``."""
    return Response(
        _script(), media_type="application/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )
