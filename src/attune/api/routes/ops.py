"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from attune.api.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The store answers and consumers are running; 503 otherwise."""
    runtime = request.app.state.runtime

    def check() -> dict:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        head = runtime.log.head()
        return {
            "log_head": head,
            "consumers": {r.consumer.name: {"position": r.cursor, "lag": head - r.cursor} for r in runtime.pipeline.runners},
        }

    try:
        details = await run_in_threadpool(check)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        return JSONResponse({"status": "unavailable", "detail": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ready", **details})


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
