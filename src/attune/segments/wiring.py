"""Plugging the segment engine into an installation (called by :mod:`attune.runtime`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from attune.consumers.base import Consumer
from attune.profiles.identity import SubjectKeys
from attune.segments.engine import SegmentEngine
from attune.segments.webhooks import WebhookDispatcher


def attach_segments(settings: Any, engine: Engine, keys: SubjectKeys, consumers: list[Consumer]) -> SegmentEngine:
    """Build the engine, listen to the features consumer and add the segments consumer after it.

    ``consumers`` is changed in place: the ``segments`` consumer goes right after ``features``
    so both run in the realtime lane, in that order. Memberships are loaded from the store.
    """
    from attune.consumers.segments import SegmentsConsumer

    features = next((c for c in consumers if c.name == "features"), None)
    store = getattr(features, "store", None)

    def offline(refs: list, as_of: float) -> Any:
        from attune.features.definitions import FeatureDefinitions
        from attune.features.offline import OfflineSource, offline_values

        definitions = getattr(store, "defs", None) or FeatureDefinitions()
        source = OfflineSource.from_store(engine, settings.lake_dir, keys, definitions)
        return offline_values(source, refs, as_of)

    segments = SegmentEngine(
        engine,
        store,
        subject_keys=keys,
        settings=settings.segments,
        offline=offline,
        webhooks=WebhookDispatcher(engine, settings.segments) if settings.segments.webhook_urls else None,
    )
    segments.load()
    if features is not None:
        features.add_listener(segments.on_change)  # type: ignore[attr-defined]
        position = consumers.index(features) + 1
    else:
        position = len(consumers)
    consumers.insert(position, SegmentsConsumer(segments, keys))
    return segments
