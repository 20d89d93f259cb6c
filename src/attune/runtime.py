"""Wires one installation together: store, log, consumers, services.

The CLI and the HTTP app both build a :class:`Runtime` from settings; nothing else creates
engines or services, so every entry point sees the same components.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass, field

from sqlalchemy import Engine

from attune.auth.keys import KeyStore
from attune.catalog.items import Catalog
from attune.consumers.base import Consumer
from attune.consumers.pipeline import Pipeline
from attune.consumers.popularity import PopularityConsumer
from attune.consumers.profiles import ProfilesConsumer
from attune.ingest.service import IngestService
from attune.ingest.workers import IngestWorkers
from attune.log.sql import SqlEventLog
from attune.privacy.changes import PrivacyChanges
from attune.privacy.consent_view import ConsentView
from attune.privacy.erasure import ErasureRequest
from attune.privacy.services import Privacy
from attune.privacy.traits_at_rest import TraitVault
from attune.profiles.identity import SubjectKeys
from attune.profiles.reader import ProfileReader
from attune.recommend.coldstart import EngineSegments
from attune.recommend.popularity import PopularityRanker
from attune.recommend.promoted import PromotedModelCache
from attune.recommend.service import RecommendationService, ServingConfig
from attune.recommend.usercache import ProfileChanges
from attune.segments.engine import SegmentEngine, consent_hooks
from attune.segments.wiring import attach_segments
from attune.settings import Settings
from attune.storage.checkpoint import WalCheckpointer, start_checkpointers
from attune.storage.engine import dispose, make_engine
from attune.storage.migrate import upgrade
from attune.training.erasure import register_model_erasure
from attune.training.trainer import models_dir, registry_for

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Every long-lived component of one installation."""

    settings: Settings
    engine: Engine
    subject_keys: SubjectKeys
    log: SqlEventLog
    keys: KeyStore
    catalog: Catalog
    profiles: ProfileReader
    ranker: PopularityRanker
    recommendations: RecommendationService
    pipeline: Pipeline
    ingest: IngestService
    segments: SegmentEngine
    privacy: Privacy
    #: Checkpoint the SQLite WALs (the database's and the event log's) in the background
    #: (``attune serve``); empty otherwise.
    checkpointers: list[WalCheckpointer] = field(default_factory=list)
    #: Processes that ingest event batches beside this one (``attune serve``), else None.
    ingest_workers: IngestWorkers | None = None

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True, background_checkpoints: bool = False) -> Runtime:
        """Open (and by default migrate) the store and build every service.

        ``background_checkpoints`` (``attune serve``): on SQLite, checkpoint the WAL from a
        background thread instead of inside whichever commit crosses the threshold.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        background = background_checkpoints and url.startswith("sqlite")
        engine = make_engine(
            url, sqlite_synchronous=settings.sqlite_synchronous, wal_autocheckpoint=0 if background else None
        )
        if migrate:
            upgrade(engine)
        checkpointers = start_checkpointers(engine) if background else []
        subject_keys = SubjectKeys()
        # Before anything stores keys: with pseudonymization on it configures subject_keys in place.
        privacy = Privacy.open(settings, engine, subject_keys)
        event_log = SqlEventLog(engine, subject_keys)
        # Trait values sealed at rest under each person's data key when privacy pseudonymizes.
        vault = trait_vault(settings, privacy)
        consumers = build_consumers(settings, subject_keys, vault)
        segments = attach_segments(settings, engine, subject_keys, consumers)
        # Segments with a purpose (marketing) hold only people who consented to it.
        segments.allows, segments.allows_many = consent_hooks(privacy.consent)
        pipeline = Pipeline(
            consumers,
            event_log,
            engine,
            flush_seconds=settings.lake.flush_seconds,
        )
        for checkpointer in checkpointers:
            checkpointer.busy = pipeline.busy
        privacy.flush_before_erasure(pipeline)
        register_model_erasure(privacy.erasure, models_dir(settings))
        register_derived_erasure(privacy, pipeline, segments)
        catalog = Catalog(engine)
        profiles = ProfileReader(engine, subject_keys, settings.profiles.recent_interactions, vault)
        ranker = PopularityRanker(
            engine, settings.recommend.popularity_half_life_days, settings.recommend.cache_seconds
        )
        recommendations = RecommendationService(
            ranker,
            profiles,
            catalog,
            PromotedModelCache(registry_for(engine, settings)),
            changes=ProfileChanges.of_pipeline(pipeline, event_log, engine, subject_keys),
            segments=EngineSegments(segments),
            # Personalization consent answered from memory; a withdrawal counts on the next request.
            consent=ConsentView(privacy.consent),
            config=ServingConfig.from_settings(settings),
        )
        # Serving's in-memory copy of a person goes with the person.
        privacy.erasure.after.append(lambda request: recommendations.users.forget(request.subject_keys))
        models = recommendations.models
        if models is not None:  # the model in memory is reloaded from its rewritten artifact
            privacy.erasure.after.append(lambda _request: models.reload())
        return cls(
            settings=settings,
            engine=engine,
            subject_keys=subject_keys,
            log=event_log,
            keys=KeyStore(engine),
            catalog=catalog,
            profiles=profiles,
            ranker=ranker,
            recommendations=recommendations,
            segments=segments,
            pipeline=pipeline,
            ingest=IngestService(
                settings.ingest, event_log, on_append=pipeline.notify, transform=privacy.ingest_transform
            ),
            privacy=privacy,
            checkpointers=checkpointers,
        )

    def start_ingest_workers(self, count: int) -> IngestWorkers | None:
        """Start ``count`` ingest worker processes (none for 0); see :mod:`attune.ingest.workers`."""
        if count < 1:
            return None
        context = multiprocessing.get_context("spawn")
        changes = PrivacyChanges.create(context)
        # This process's consent changes and erasures reach the workers' caches, and theirs ours.
        self.privacy.consent.shared = changes.consent
        self.privacy.erasure.after.append(lambda _request: changes.erasures.bump())
        self.ingest_workers = IngestWorkers(
            self.settings,
            self.ingest.enricher.sessions,
            changes,
            count,
            context=context,
            background_checkpoints=bool(self.checkpointers),
            on_append=self.pipeline.notify,
        )
        return self.ingest_workers

    def stop_ingest_workers(self) -> None:
        """Stop the ingest workers, if any, after their current batch."""
        if self.ingest_workers is not None:
            self.ingest_workers.close()
            self.ingest_workers = None

    def close(self) -> None:
        """Stop consumers (flushing buffers) and release connections."""
        self.stop_ingest_workers()
        self.pipeline.stop()
        self.segments.stop()
        self.stop_checkpointers()
        dispose(self.engine)

    def stop_checkpointers(self) -> None:
        """Stop the background WAL checkpoints, each after a last run."""
        for checkpointer in self.checkpointers:
            checkpointer.stop()
        self.checkpointers.clear()

    def catch_up(self) -> int:
        """Run every consumer to the head of the log in this thread (CLI commands)."""
        handled = self.pipeline.drain()
        self.ranker.invalidate()
        return handled


def trait_vault(settings: Settings, privacy: Privacy) -> TraitVault | None:
    """The trait encryption of an installation: on with pseudonymization, off otherwise."""
    return TraitVault(privacy.person_keys) if settings.privacy.pseudonymize else None


def build_consumers(settings: Settings, subject_keys: SubjectKeys, vault: TraitVault | None = None) -> list[Consumer]:
    """The consumers of an installation, in the order they are started."""
    from attune.consumers.features import FeaturesConsumer
    from attune.lake.consumer import LakeConsumer

    return [
        ProfilesConsumer(subject_keys, settings.profiles.source_priority, vault),
        FeaturesConsumer.from_settings(settings, subject_keys),
        PopularityConsumer(settings.recommend.event_weights),
        LakeConsumer(settings.lake_dir, settings.lake.flush_events),
    ]


def register_derived_erasure(privacy: Privacy, pipeline: Pipeline, segments: SegmentEngine) -> None:
    """Erasure reaches the state consumers keep in memory: features and segment memberships."""
    from attune.consumers.features import FeaturesConsumer, FeaturesEraser

    for runner in pipeline.runners:
        if isinstance(runner.consumer, FeaturesConsumer):
            privacy.erasure.register(FeaturesEraser(runner.consumer))

    def forget_memberships(request: ErasureRequest) -> None:
        for key in request.subject_keys:
            segments.erase(key)

    privacy.erasure.after.append(forget_memberships)
