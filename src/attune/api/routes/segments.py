"""Segments: definitions (admin), members, memberships of a person, conflicts, size history (read).

``GET /v1/users/{user_id}/segments`` is answered from the engine's memory: no database access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from attune.api.auth import AdminKey, ReadKey
from attune.api.body import read_json
from attune.api.problems import problem
from attune.api.responses import JSONResponse
from attune.events.timestamps import iso


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the engine's lapse scheduler and webhook delivery, and scheduled learning when
    ``[segments] learn_every_hours`` is set, while the app serves."""
    from attune.segments.learning import learning_for

    runtime = app.state.runtime
    engine = getattr(runtime, "segments", None)
    learning = learning_for(runtime) if engine is not None else None
    if engine is not None:
        engine.start()
        if not _consuming(runtime):
            # The consumers run in another process (a worker): follow its changes.
            engine.follow()
    if learning is not None:
        learning.start()
    try:
        yield
    finally:
        if learning is not None:
            learning.stop(timeout=1.0)
        if engine is not None:
            engine.stop()


def _consuming(runtime: Any) -> bool:
    """Whether this process runs the consumers (the app's lifespan starts them before ours)."""
    pipeline = runtime.pipeline
    running = getattr(pipeline, "running", None)
    return bool(running) if running is not None else bool(getattr(pipeline, "_threads", ()))


router = APIRouter(tags=["segments"], lifespan=lifespan)


class SegmentIn(BaseModel):
    """``PUT /v1/segments/{name}`` body (documentation; the body is validated by the domain)."""

    rule: str = Field(..., description="A rule such as count(view, window=7d) >= 3 (see DESIGN.md).")
    priority: int = Field(0, description="Within a group, the highest priority matching segment wins.")
    group: str | None = Field(None, description="Exclusive group: a person holds one segment of it.")
    description: str = Field("", description="What the segment is for.")
    purpose: str | None = Field(None, description='"marketing": only people who consented may hold it.')


class SegmentOut(BaseModel):
    """One segment definition with its version and current size."""

    name: str
    kind: str
    rule: str | None
    priority: int
    group: str | None
    description: str
    purpose: str | None
    version: int
    created_at: str
    updated_at: str
    size: int


class MembershipOut(BaseModel):
    """One segment a person holds."""

    name: str
    confidence: float = Field(..., ge=0, le=1)
    since: str


class UserSegmentsOut(BaseModel):
    """``GET /v1/users/{user_id}/segments``."""

    segments: list[MembershipOut]


def _engine(request: Request) -> Any:
    return request.app.state.runtime.segments


def _segment_out(engine: Any, name: str) -> dict[str, Any]:
    stored = engine.stored(name)
    spec = stored.spec
    out = {
        "name": name,
        "kind": spec.get("kind", "rule"),
        "rule": spec.get("rule"),
        "priority": spec.get("priority", 0),
        "group": spec.get("group"),
        "description": spec.get("description", ""),
        "purpose": spec.get("purpose"),
        "version": stored.version,
        "created_at": iso(stored.created_at),
        "updated_at": iso(stored.updated_at),
        "size": engine.size(name),
    }
    if spec.get("kind") == "learnt":
        out["model"] = {k: v for k, v in spec.items() if k not in out}
    return out


@router.put(
    "/v1/segments/{name}",
    response_model=SegmentOut,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": SegmentIn.model_json_schema()}}}
    },
)
async def put_segment(name: str, request: Request) -> JSONResponse:
    """Create or replace a segment; everyone is re-evaluated against it before the answer.

    A bad rule is refused with 422, the message and ``position``/``line``/``column`` of the fault.
    """
    from attune.segments.rules import RuleError

    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    try:
        await run_in_threadpool(runtime.segments.apply_definitions, {name: body})
    except RuleError as error:
        where = {"position": error.position, "line": error.line, "column": error.column}
        return problem(422, "Validation failed", error.message, error.errors, **where)
    return JSONResponse(_segment_out(runtime.segments, name))


@router.get("/v1/segments", dependencies=[ReadKey])
async def list_segments(request: Request) -> JSONResponse:
    """Every segment with its definition, version and current size."""
    engine = _engine(request)
    return JSONResponse({"segments": [_segment_out(engine, name) for name in sorted(engine.definitions())]})


@router.get("/v1/segments/conflicts", dependencies=[ReadKey])
async def get_conflicts(request: Request) -> JSONResponse:
    """The conflict report: equal priorities in a group, rules that never or always match."""
    from attune.segments.conflicts import conflict_report

    report = await run_in_threadpool(conflict_report, _engine(request).definitions())
    return JSONResponse(
        {
            "conflicts": [
                {
                    "kind": c.kind,
                    "segments": list(c.segments),
                    "message": c.message,
                    "example": c.example,
                    "exhaustive": c.exhaustive,
                }
                for c in report
            ]
        }
    )


@router.get("/v1/segments/{name}", response_model=SegmentOut, dependencies=[ReadKey])
async def get_segment(name: str, request: Request) -> JSONResponse:
    """One segment's definition, version and current size."""
    return JSONResponse(_segment_out(_engine(request), name))


@router.delete("/v1/segments/{name}", dependencies=[AdminKey])
async def delete_segment(name: str, request: Request) -> JSONResponse:
    """Delete a segment; its members leave it (recorded as exits). 422 while others refer to it."""
    await run_in_threadpool(_engine(request).delete_definition, name)
    return JSONResponse({"deleted": name})


@router.get("/v1/segments/{name}/members", dependencies=[ReadKey])
async def get_members(
    name: str,
    request: Request,
    offset: int = Query(0, ge=0, description="Members to skip."),
    limit: int = Query(100, ge=1, le=10_000, description="Members per page."),
) -> JSONResponse:
    """A page of the segment's members: ``{"members": [{"user_id", "confidence", "since"}], "total", "next_offset"}``."""
    engine = _engine(request)
    keys = request.app.state.runtime.subject_keys
    page = engine.members(name, offset, limit)
    total = engine.size(name)
    return JSONResponse(
        {
            "segment": name,
            "total": total,
            "offset": offset,
            "members": [
                {
                    "user_id": keys.display_id(key),
                    "anonymous": not keys.is_user(key),
                    "confidence": m.confidence,
                    "since": iso(m.since),
                }
                for key, m in page
            ],
            # A short page is the last: members who withdrew consent are skipped, not counted.
            "next_offset": offset + len(page) if len(page) == limit and offset + len(page) < total else None,
        }
    )


@router.get("/v1/segments/{name}/history", dependencies=[ReadKey])
async def get_history(
    name: str,
    request: Request,
    start: float | None = Query(None, description="From this instant (epoch seconds)."),
    end: float | None = Query(None, description="Until this instant (epoch seconds)."),
    bucket: str = Query("hour", pattern="^(hour|day)$", description="hour or day."),
) -> JSONResponse:
    """Segment size over time: entries, exits and the size at the end of each hour or day."""
    from attune.segments.history import size_series

    engine = _engine(request)
    engine.stored(name)  # 404 for unknown segments
    series = await run_in_threadpool(size_series, engine.store, name, start, end, bucket)
    return JSONResponse({"segment": name, "bucket": bucket, "size": engine.size(name), "series": series})


@router.get("/v1/users/{user_id}/segments", response_model=UserSegmentsOut, dependencies=[ReadKey])
async def get_user_segments(user_id: str, request: Request) -> JSONResponse:
    """The segments a person holds, with confidence and since; from memory (unknown people: none)."""
    engine = request.app.state.runtime.segments
    key = engine.resolve_user(user_id)
    return JSONResponse({"segments": [m.to_dict() for m in engine.segments_of(key)]})


@router.get("/v1/users/{user_id}/features", dependencies=[ReadKey])
async def get_user_features(user_id: str, request: Request) -> JSONResponse:
    """A person's features now: per window and event type counts, distinct items and values, per
    category counts, the named features (engagement_score, recency_days, …) and latest context.
    From memory; unknown people get empty sections."""
    runtime = request.app.state.runtime
    store = runtime.pipeline.runner("features").consumer.store
    key = runtime.segments.resolve_user(user_id)
    return JSONResponse(store.snapshot(key, runtime.segments.clock()))
