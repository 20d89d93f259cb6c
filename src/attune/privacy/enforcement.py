"""Consent enforcement at ingestion: keep an event, strip its personal fields, or drop it.

Each event type serves purposes (``[privacy] event_purposes``; ``"*"`` covers types not
listed). Defaults: every behavioural type serves ``analytics``; ``identify`` (traits) serves
``personalization``; ``consent`` events serve none and are always kept, so a refusal can
always be recorded. For each purpose the event's subject has not granted,
``[privacy] purpose_actions`` says ``strip`` or ``drop``; ``drop`` wins over ``strip``.

Stripping keeps what aggregate statistics need (type, item, value, time, coarse device)
and removes the person: ids become :data:`STRIPPED_ID`, and traits, IP, location, user agent,
session, page URLs and properties go. Consumers that build per-person state skip events
whose anonymous id is :data:`STRIPPED_ID`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from enum import Enum

from attune.events.model import Event

#: The anonymous id of a stripped event: nobody's, and skipped by per-person consumers.
STRIPPED_ID = "~stripped"
_KEPT_CONTEXT = ("source", "device")


class Decision(str, Enum):
    """What happens to one event."""

    KEEP = "keep"
    STRIP = "strip"
    DROP = "drop"


def purposes_of(event_type: str, event_purposes: Mapping[str, list[str]]) -> list[str]:
    """The purposes an event type serves."""
    if event_type in event_purposes:
        return list(event_purposes[event_type])
    return list(event_purposes.get("*", []))


def decide(
    event: Event,
    allows: Callable[[str], bool],
    event_purposes: Mapping[str, list[str]],
    purpose_actions: Mapping[str, str],
) -> Decision:
    """Keep, strip or drop ``event``, given ``allows(purpose)`` for its subject."""
    decision = Decision.KEEP
    for purpose in purposes_of(event.type, event_purposes):
        if allows(purpose):
            continue
        if purpose_actions.get(purpose, "drop") == "drop":
            return Decision.DROP
        decision = Decision.STRIP
    return decision


def strip(event: Event) -> Event:
    """``event`` without anything that identifies or describes the person."""
    device = event.context.get("device")
    context = {k: event.context[k] for k in _KEPT_CONTEXT if k in event.context}
    if isinstance(device, dict):
        context["device"] = {k: v for k, v in device.items() if k in ("type",)}
    return replace(
        event, user_id=None, anonymous_id=STRIPPED_ID, session_id=None, traits=None, context=context, properties={}
    )
