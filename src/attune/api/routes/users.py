"""Users: trait upserts (CRM sync) and unified profiles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import AdminKey, ReadKey
from attune.api.body import read_json
from attune.api.models import ProfileOut, UserTraitsRequest
from attune.api.responses import JSONResponse
from attune.errors import ValidationFailed

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.put(
    "/{user_id}",
    response_model=ProfileOut,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": UserTraitsRequest.model_json_schema()}}}
    },
)
async def put_user(user_id: str, request: Request) -> JSONResponse:
    """Upsert traits (``{"traits": {...}, "source": "crm"}`` or a bare traits object).

    The change goes through the event log as an ``identify`` event, so replays keep it; the
    answer waits until the profile shows it.
    """
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object of traits", errors=["body: must be an object"])
    if "traits" in body and not isinstance(body["traits"], dict):
        # Not a bare trait called "traits": the envelope form with a wrong value.
        raise ValidationFailed("traits must be an object", errors=["traits: must be an object"])
    if isinstance(body.get("traits"), dict):
        traits, source, timestamp = body["traits"], body.get("source", "api"), body.get("timestamp")
        unknown = sorted(set(body) - {"traits", "source", "timestamp"})
        if unknown:
            raise ValidationFailed("unknown fields", errors=[f"{name}: unknown field" for name in unknown])
    else:
        traits, source, timestamp = body, "api", None
    if not isinstance(source, str) or not source.strip():
        raise ValidationFailed("source must be a non-empty string", errors=["source: must be a non-empty string"])
    event = {"type": "identify", "user_id": user_id, "traits": traits, "context": {"source": source}}
    if timestamp is not None:
        event["timestamp"] = timestamp
    report = await run_in_threadpool(runtime.ingest.ingest, [event], source="users_api")
    if report.rejected:
        raise ValidationFailed("the traits were refused", errors=report.rejected[0].errors)
    await run_in_threadpool(runtime.pipeline.wait_for, report.last_offset)
    profile = await run_in_threadpool(runtime.profiles.get, user_id)
    return JSONResponse(profile.to_dict())


@router.get("/{user_id}/profile", response_model=ProfileOut, dependencies=[ReadKey])
async def get_profile(user_id: str, request: Request) -> JSONResponse:
    """The unified profile: traits (with their sources), activity counts, linked ids, recent interactions."""
    profile = await run_in_threadpool(request.app.state.runtime.profiles.get, user_id)
    return JSONResponse(profile.to_dict())
