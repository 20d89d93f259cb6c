"""Users: trait upserts (CRM sync) and unified profiles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from attune.api.auth import AdminKey, ReadKey
from attune.api.body import read_json
from attune.api.models import ProfileOut, UsersBatchRequest, UsersBatchResponse, UserTraitsRequest
from attune.api.responses import JSONResponse
from attune.auth.keys import ApiKey
from attune.errors import PayloadTooLarge, ValidationFailed

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.put(
    "/{user_id}",
    response_model=ProfileOut,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            UserTraitsRequest.model_json_schema(),
                            {"type": "object", "description": "Bare traits: the object is the traits."},
                        ]
                    }
                }
            },
        }
    },
)
async def put_user(user_id: str, request: Request) -> JSONResponse:
    """Upsert traits (``{"traits": {...}, "source": "crm"}`` or a bare traits object).

    The change goes through the event log as an ``identify`` event, so replays keep it; the
    answer waits until the profile shows it.
    """
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    event = identify_event(user_id, body)
    report = await run_in_threadpool(runtime.ingest.ingest, [event], source="users_api")
    if report.rejected:
        raise ValidationFailed("the traits were refused", errors=report.rejected[0].errors)
    await run_in_threadpool(runtime.pipeline.wait_for, report.last_offset)
    # Ingestion trims ids (any Unicode space, e.g. U+0085), so read back the id it stored.
    profile = await run_in_threadpool(runtime.profiles.get, user_id.strip())
    return JSONResponse(profile.to_dict())


def identify_event(user_id: object, body: object) -> dict:
    """The ``identify`` event for a traits upsert; :class:`ValidationFailed` names the fault.

    ``body`` is ``{"traits": {...}, "source": "crm", "timestamp": ...}`` or a bare traits object.
    """
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
        raise ValidationFailed(
            "source must be a non-empty string", errors=["source: must be a non-empty string"]
        )
    event = {"type": "identify", "user_id": user_id, "traits": traits, "context": {"source": source}}
    if timestamp is not None:
        event["timestamp"] = timestamp
    return event


@router.post(
    "/batch",
    response_model=UsersBatchResponse,
    dependencies=[AdminKey],
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": UsersBatchRequest.model_json_schema()}}}
    },
)
async def post_users_batch(request: Request) -> JSONResponse:
    """Upsert traits of up to 1,000 users: ``{"users": [{"user_id": ..., "traits": {...}, "source": "crm"}]}``.

    Bad entries are reported by index with every reason; the good ones are kept. The answer
    waits until the profiles show the new traits.
    """
    runtime = request.app.state.runtime
    limits = runtime.settings.ingest
    body = await read_json(request, limits.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("users"), list):
        raise ValidationFailed('the body must be {"users": [...]}', errors=["users: must be an array"])
    entries = body["users"]
    if len(entries) > limits.max_batch_events:
        raise PayloadTooLarge(f"{len(entries)} users in one request; the limit is {limits.max_batch_events}")
    events, positions, rejected = [], [], []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict) or "user_id" not in entry:
                raise ValidationFailed("user_id missing", errors=["user_id: is required"])
            rest = {k: v for k, v in entry.items() if k != "user_id"}
            events.append(identify_event(entry["user_id"], rest))
            positions.append(index)
        except ValidationFailed as exc:
            rejected.append({"index": index, "errors": exc.errors})
    report = await run_in_threadpool(runtime.ingest.ingest, events, source="users_api")
    rejected += [{"index": positions[r.index], "errors": r.errors} for r in report.rejected]
    if report.last_offset:
        await run_in_threadpool(runtime.pipeline.wait_for, report.last_offset)
    rejected.sort(key=lambda r: r["index"])
    return JSONResponse({"upserted": report.accepted + report.duplicates, "rejected": rejected})


@router.get("/{user_id}/profile", response_model=ProfileOut)
async def get_profile(user_id: str, request: Request, key: ApiKey = ReadKey) -> JSONResponse:
    """The unified profile: traits (with their sources), activity counts, linked ids, recent interactions."""
    runtime = request.app.state.runtime
    profile = await run_in_threadpool(runtime.profiles.get, user_id)
    # Reading a person's profile is recorded (audit log); the target is their stored key.
    await run_in_threadpool(runtime.privacy.audit.append, key.key_id, "profile.read", runtime.subject_keys.user(user_id))
    return JSONResponse(profile.to_dict())
