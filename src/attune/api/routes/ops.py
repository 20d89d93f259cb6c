"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from attune.api.responses import JSONResponse

router = APIRouter(tags=["operations"])


class HealthOut(BaseModel):
    """``GET /healthz``."""

    status: str = Field(..., description="Always 'ok' when the process answers.")


class ConsumerStateOut(BaseModel):
    """Where one consumer stands in the event log."""

    position: int
    lag: int


class IngestWorkersOut(BaseModel):
    """The ingest worker processes of ``attune serve``."""

    running: int = Field(..., description="Worker processes alive.")
    ready: bool = Field(..., description="Large batches go to workers (else the server ingests them itself).")


class ReadyOut(BaseModel):
    """``GET /readyz``: ready with log and consumer positions, or unavailable with the reason."""

    status: str = Field(..., description="'ready' or 'unavailable'.")
    log_head: int | None = None
    consumers: dict[str, ConsumerStateOut] | None = None
    ingest_workers: IngestWorkersOut | None = Field(
        None, description="Processes ingesting event batches (absent when the server runs none)."
    )
    detail: str | None = Field(None, description="Why the service is not ready.")


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> JSONResponse:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut, "description": "Not ready"}}
)
async def readyz(request: Request) -> JSONResponse:
    """The store answers and consumers are running; 503 otherwise."""
    runtime = request.app.state.runtime

    def check() -> dict:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        head = runtime.log.head()
        details: dict = {
            "log_head": head,
            "consumers": {
                r.consumer.name: {"position": r.cursor, "lag": head - r.cursor}
                for r in runtime.pipeline.runners
            },
        }
        workers = runtime.ingest_workers
        if workers is not None:
            details["ingest_workers"] = {"running": len(workers.pids()), "ready": workers.ready}
        return details

    try:
        details = await run_in_threadpool(check)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        return JSONResponse({"status": "unavailable", "detail": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ready", **details})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition", "content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
