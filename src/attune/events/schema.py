"""The native event as accepted at the edge (HTTP, importers), with its JSON Schema.

This pydantic model only checks shape and types; :mod:`attune.events.normalize` applies
limits that depend on settings and turns it into the domain :class:`~attune.events.model.Event`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

Number = StrictInt | StrictFloat


class PageIn(BaseModel):
    """Where a page event happened."""

    model_config = ConfigDict(extra="allow")
    url: StrictStr | None = None
    referrer: StrictStr | None = None
    title: StrictStr | None = None


class ContextIn(BaseModel):
    """Context of an event: device, network, location, page, session."""

    model_config = ConfigDict(extra="allow")
    device: dict[str, Any] | None = None
    ip: StrictStr | None = None
    user_agent: StrictStr | None = None
    geo: dict[str, Any] | None = None
    page: PageIn | None = None
    session_id: StrictStr | None = None
    source: StrictStr | None = Field(
        None, description="Where the event came from (web, crm, import…); decides trait priority."
    )


class EventIn(BaseModel):
    """A native Attune event. At least one of ``user_id`` and ``anonymous_id`` is required."""

    model_config = ConfigDict(extra="forbid", title="AttuneEvent")
    event_id: StrictStr | None = Field(None, description="Idempotency key; generated when absent.")
    type: StrictStr = Field(..., description="page_view, view, click, add_to_cart, purchase, rating, …")
    user_id: StrictStr | StrictInt | None = Field(None, description="Known id of the person.")
    anonymous_id: StrictStr | StrictInt | None = Field(None, description="Device or cookie id.")
    item_id: StrictStr | StrictInt | None = Field(None, description="The item acted on, if any.")
    value: Number | None = Field(None, description="Rating, price or other number; must be finite.")
    timestamp: StrictStr | Number | None = Field(
        None, description="ISO 8601, epoch seconds or epoch milliseconds; server time when absent."
    )
    context: ContextIn | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = Field(None, description="Traits set by identify events.")


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema published at ``GET /v1/schema/event.json``."""
    schema = EventIn.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/v1/schema/event.json"
    schema["anyOf"] = [{"required": ["user_id"]}, {"required": ["anonymous_id"]}]
    return schema
