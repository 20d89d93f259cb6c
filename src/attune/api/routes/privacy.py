"""Rights of the person over HTTP: consent, export, erasure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from attune.api.auth import AdminKey, ReadKey
from attune.api.body import read_json
from attune.api.responses import JSONResponse
from attune.auth.keys import ApiKey
from attune.errors import ValidationFailed
from attune.privacy.rights import export_person

router = APIRouter(prefix="/v1/users", tags=["privacy"])


class ConsentRequest(BaseModel):
    """Body of ``PUT /v1/users/{user_id}/consent``."""

    model_config = ConfigDict(extra="forbid")
    purposes: dict[str, str] = Field(
        ..., description='Purpose -> "granted", "denied" or "withdrawn", e.g. {"marketing": "denied"}.'
    )
    source: str = Field(..., description="Where the decision was made, e.g. cookie-banner.")


class ConsentState(BaseModel):
    """The effective state of one purpose."""

    state: str
    source: str
    at: str | None


class ConsentOut(BaseModel):
    """A person's consent: current state per purpose and every decision made."""

    user_id: str
    purposes: dict[str, ConsentState]
    history: list[dict[str, Any]]


class ErasureOut(BaseModel):
    """What an erasure removed, per store."""

    user_id: str
    erased: dict[str, int]


def _consent_answer(privacy, user_id: str) -> dict[str, Any]:
    key = privacy.subject_keys.user(user_id)
    keys = privacy.erasure.subject_keys_of(user_id) or [key]
    return {"user_id": user_id, "purposes": privacy.consent.current(key), "history": privacy.consent.history(keys)}


@router.put(
    "/{user_id}/consent",
    response_model=ConsentOut,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": ConsentRequest.model_json_schema()}}}},
)
async def put_consent(user_id: str, request: Request, key: ApiKey = AdminKey) -> JSONResponse:
    """Record consent decisions; they apply from the next request on."""
    runtime = request.app.state.runtime
    body = await read_json(request, runtime.settings.ingest.max_body_bytes)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=["body: must be an object"])
    unknown = sorted(set(body) - {"purposes", "source"})
    if unknown:
        raise ValidationFailed("unknown fields", errors=[f"{name}: unknown field" for name in unknown])
    if not isinstance(user_id, str) or not user_id.strip() or "\x00" in user_id or len(user_id) > 256:
        raise ValidationFailed("invalid user id", errors=["user_id: 1 to 256 characters, no NUL"])
    privacy = runtime.privacy

    def work() -> dict[str, Any]:
        changes = privacy.consent.set(user_id, body.get("purposes"), body.get("source"))
        if privacy.registry is not None and privacy.subject_keys.pseudonymized:
            privacy.registry.register([(changes[0].subject_key, user_id)])
        privacy.audit.append(key.key_id, "consent.set", changes[0].subject_key,
                             {c.purpose: c.state for c in changes} | {"source": changes[0].source})
        return _consent_answer(privacy, user_id)

    return JSONResponse(await run_in_threadpool(work))


@router.get("/{user_id}/consent", response_model=ConsentOut, dependencies=[ReadKey])
async def get_consent(user_id: str, request: Request) -> JSONResponse:
    """Current consent per purpose (decided or default) and the full history."""
    privacy = request.app.state.runtime.privacy
    return JSONResponse(await run_in_threadpool(_consent_answer, privacy, user_id))


@router.get("/{user_id}/export")
async def get_export(user_id: str, request: Request, key: ApiKey = AdminKey) -> JSONResponse:
    """Everything held about the person, as readable JSON (404 when nothing is)."""
    runtime = request.app.state.runtime
    privacy = runtime.privacy

    def work() -> dict[str, Any]:
        runtime.pipeline.wait_for(runtime.log.head())
        data = export_person(runtime, privacy, user_id, privacy.export_hooks)
        privacy.audit.append(key.key_id, "person.export", privacy.subject_keys.user(user_id),
                             {"events": len(data["events"])})
        return data

    return JSONResponse(await run_in_threadpool(work))


@router.delete("/{user_id}", response_model=ErasureOut)
async def delete_user(user_id: str, request: Request, key: ApiKey = AdminKey) -> JSONResponse:
    """Erase the person everywhere (log, profiles, consent, lake, keys); 404 when nothing is held."""
    runtime = request.app.state.runtime
    privacy = runtime.privacy

    def work() -> dict[str, Any]:
        runtime.pipeline.wait_for(runtime.log.head())
        done = privacy.erasure.erase(user_id)
        # The audit entry names the pseudonymous key only: the log must not keep what was erased.
        privacy.audit.append(key.key_id, "person.erase", done.subject_keys[0] if privacy.subject_keys.pseudonymized
                             else "(erased)", {"records": done.counts})
        return {"user_id": user_id, "erased": done.counts}

    return JSONResponse(await run_in_threadpool(work))
