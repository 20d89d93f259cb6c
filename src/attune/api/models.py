"""Request and response schemas of the HTTP API (documentation and validation at the edge)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RejectionOut(BaseModel):
    """One rejected event."""

    index: int = Field(..., description="Position of the event in the request.")
    errors: list[str] = Field(..., description="Every reason, as 'field: reason'.")


class IngestResponse(BaseModel):
    """Answer of an ingestion request."""

    accepted: int
    duplicates: int
    rejected: list[RejectionOut]


class EventsRequest(BaseModel):
    """Body of ``POST /v1/events``."""

    events: list[dict[str, Any]] = Field(..., description="Native events (see /v1/schema/event.json).")


class ItemOut(BaseModel):
    """A catalog item."""

    item_id: str
    attributes: dict[str, Any]
    updated_at: str


class ItemsBatchRequest(BaseModel):
    """Body of ``POST /v1/items/batch``: each entry has ``item_id`` plus attributes."""

    items: list[dict[str, Any]]


class ItemsBatchResponse(BaseModel):
    """Answer of a batch item upsert."""

    upserted: int
    rejected: list[RejectionOut]


class UserTraitsRequest(BaseModel):
    """Body of ``PUT /v1/users/{user_id}``."""

    traits: dict[str, Any] = Field(..., description="Trait values to set.")
    source: str = Field("api", description="Source name for the trait conflict rule (e.g. crm).")
    timestamp: str | float | None = Field(None, description="When the values were true; now when absent.")


class UsersBatchRequest(BaseModel):
    """Body of ``POST /v1/users/batch``: each entry has ``user_id`` and ``traits`` (or bare traits)."""

    users: list[dict[str, Any]]


class UsersBatchResponse(BaseModel):
    """Answer of a batch traits upsert."""

    upserted: int
    rejected: list[RejectionOut]


class RecommendedItemOut(BaseModel):
    """One recommended item."""

    item_id: str
    score: float
    reason: str


class RecommendationsOut(BaseModel):
    """Recommendations for one user."""

    user_id: str
    model: str
    personalized: bool
    items: list[RecommendedItemOut]


class SimilarItemsOut(BaseModel):
    """Items similar to one item."""

    item_id: str
    model: str
    items: list[RecommendedItemOut]


class ProfileOut(BaseModel):
    """A unified profile."""

    user_id: str
    traits: dict[str, Any]
    trait_sources: dict[str, dict[str, Any]]
    first_seen: str | None
    last_seen: str | None
    event_counts: dict[str, int]
    anonymous_ids: list[str]
    merged_user_ids: list[str]
    recent_interactions: list[dict[str, Any]]


class ProblemOut(BaseModel):
    """An error answer, ``application/problem+json`` (RFC 9457); extension members may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., description="Always 'about:blank': the status and title say what happened.")
    title: str = Field(..., description="Short name of the kind of error.")
    status: int = Field(..., description="The HTTP status code.")
    detail: str = Field(..., description="What went wrong with this request, in words.")
    errors: list[str] | None = Field(None, description="Every fault, as 'field: reason'.")
