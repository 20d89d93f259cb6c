"""The model registry: list versions, promote one, roll back (admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from attune.api.auth import AdminKey
from attune.api.problems import problem_responses
from attune.api.responses import JSONResponse
from attune.auth.keys import ApiKey
from attune.events.timestamps import iso
from attune.training.registry import ModelRegistry, ModelVersion, Promotion
from attune.training.trainer import registry_for

router = APIRouter(prefix="/v1/models", tags=["models"])


class ModelVersionOut(BaseModel):
    """One registered model version."""

    version: str = Field(..., description="Version id (v1, v2, …).")
    name: str = Field(..., description="Model: popular, itemknn, ease, als, bpr, content, hybrid, …")
    params: dict[str, Any] = Field(..., description="Hyper-parameters.")
    status: str = Field(..., description="building, ready, promoted, retired or failed.")
    data_from: str | None = Field(None, description="Earliest training interaction (ISO 8601).")
    data_to: str | None = Field(None, description="Latest training interaction (ISO 8601).")
    n_interactions: int
    n_users: int
    n_items: int
    metrics: dict[str, float] = Field(
        ..., description="Held-out metrics (per-user temporal holdout), e.g. ndcg@10."
    )
    details: dict[str, Any] = Field(..., description="Split sizes, beyond-accuracy figures, tuning summary.")
    created_at: str


class PromotionOut(BaseModel):
    """One promotion or rollback."""

    action: str
    version: str
    previous_version: str | None
    actor: str
    at: str


class ModelsOut(BaseModel):
    """``GET /v1/models``."""

    promoted: str | None = Field(None, description="The version serving uses.")
    versions: list[ModelVersionOut]
    history: list[PromotionOut]


def _version_out(entry: ModelVersion) -> dict[str, Any]:
    out = entry.to_dict()
    out.pop("artifact_path", None)  # a server path is no business of API clients
    for name in ("data_from", "data_to", "created_at"):
        out[name] = iso(out[name]) if out[name] is not None else None
    return out


def _promotion_out(entry: Promotion) -> dict[str, Any]:
    return {
        "action": entry.action,
        "version": entry.version,
        "previous_version": entry.previous_version,
        "actor": entry.actor,
        "at": iso(entry.at),
    }


def _registry(request: Request) -> ModelRegistry:
    runtime = request.app.state.runtime
    return registry_for(runtime.engine, runtime.settings)


@router.get("", response_model=ModelsOut, dependencies=[AdminKey])
async def list_models(request: Request) -> JSONResponse:
    """Every version, newest first, the promoted one, and the promotion history."""
    registry = _registry(request)

    def read() -> dict[str, Any]:
        promoted = registry.promoted()
        return {
            "promoted": promoted.version if promoted else None,
            "versions": [_version_out(v) for v in registry.list()],
            "history": [_promotion_out(p) for p in registry.history()],
        }

    return JSONResponse(await run_in_threadpool(read))


@router.post("/rollback", response_model=ModelVersionOut, responses=problem_responses(409))
async def rollback(request: Request, key: ApiKey = AdminKey) -> JSONResponse:
    """Promote again the version promoted before the current one (409 when there is none)."""
    entry = await run_in_threadpool(_registry(request).rollback, f"api:{key.key_id}")
    return JSONResponse(_version_out(entry))


@router.post("/{version}/promote", response_model=ModelVersionOut, responses=problem_responses(409))
async def promote(version: str, request: Request, key: ApiKey = AdminKey) -> JSONResponse:
    """Make ``version`` the one serving uses (404 unknown, 422 not promotable)."""
    entry = await run_in_threadpool(_registry(request).promote, version, f"api:{key.key_id}")
    return JSONResponse(_version_out(entry))
