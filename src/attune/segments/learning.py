"""Learnt segments end to end: features from the lake, clustering, storage as segments, schedule.

``attune segments learn`` and the optional schedule (``[segments] learn_every_hours``) both call
:func:`learn_and_store`: every person's named features (``engagement_score``, ``monetary``,
``recency_days``, …) are computed from the lake at one instant with the offline path
(:func:`attune.features.offline.offline_values`), clustered by
:func:`attune.segments.learnt.learn_segments` (inputs standardized; k by silhouette unless
given) and stored with :meth:`SegmentEngine.set_learnt`: one segment per cluster, named
``<prefix>_<rank>``, described by its most distinguishing features, each member with a
confidence (Gaussian mixtures: the membership probability; k-means/DBSCAN: 1). The previous
learnt segments of the same prefix are replaced (their members leave).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from attune.features.catalog import FEATURE_NAMES
from attune.features.refs import FeatureRef

log = logging.getLogger(__name__)

#: The numeric per-person features clustered by default.
DEFAULT_FEATURES: tuple[str, ...] = tuple(sorted(FEATURE_NAMES))


@dataclass(frozen=True)
class LearnOutcome:
    """What a learning run produced: specs and confidences by segment, and the clustering."""

    specs: dict[str, dict[str, Any]]
    assignments: dict[str, dict[str, float]]
    clustering: Any


def learn(
    runtime: Any,
    *,
    method: str = "gmm",
    k: int | None = None,
    prefix: str = "cluster",
    features: Sequence[str] = DEFAULT_FEATURES,
    as_of: float | None = None,
    min_confidence: float = 0.1,
) -> LearnOutcome:
    """Cluster everyone in the lake by ``features`` at ``as_of`` (default: now); nothing stored."""
    from attune.errors import ValidationFailed
    from attune.features.offline import OfflineSource, offline_values
    from attune.segments.learnt import learn_segments, matrix_from_offline

    unknown = sorted(set(features) - FEATURE_NAMES)
    if unknown:
        raise ValidationFailed(
            f"features: unknown feature {unknown[0]!r} (known: {', '.join(sorted(FEATURE_NAMES))})"
        )
    refs = [FeatureRef("feature", name=name) for name in features]
    offline = offline_values(
        OfflineSource.from_runtime(runtime), refs, time.time() if as_of is None else as_of
    )
    keys, matrix, _ = matrix_from_offline(offline, refs)  # named features are all numeric
    names = [r.name for r in refs]
    clustering = learn_segments(
        keys, matrix, names, method=method, k=k, prefix=prefix, min_confidence=min_confidence
    )
    specs: dict[str, dict[str, Any]] = {}
    assignments: dict[str, dict[str, float]] = {}
    for segment in clustering.segments:
        specs[segment.name] = {
            "description": segment.description,
            "method": segment.method,
            "features": list(names),
            "silhouette": _finite(clustering.silhouette),
            "distinctions": [
                {
                    "feature": d.feature,
                    "effect": _finite(d.effect),
                    "cluster_mean": _finite(d.cluster_mean),
                    "others_mean": _finite(d.others_mean),
                }
                for d in segment.distinctions
            ],
        }
        assignments[segment.name] = {m.subject_key: m.confidence for m in segment.members}
    return LearnOutcome(specs, assignments, clustering)


def learn_and_store(runtime: Any, **options: Any) -> LearnOutcome:
    """:func:`learn`, then store the clusters as segments (replacing those of the same prefix)."""
    prefix = options.get("prefix", "cluster")
    outcome = learn(runtime, **options)
    engine = runtime.segments
    # Learnt segments of other prefixes stay: pass them through unchanged.
    kept = {
        name: dict(engine.stored(name).spec)
        for name, definition in engine.definitions().items()
        if definition.kind == "learnt" and not name.startswith(f"{prefix}_")
    }
    specs = {**kept, **outcome.specs}
    assignments = {name: engine.learnt_confidences(name) for name in kept} | outcome.assignments
    engine.set_learnt(specs, assignments)
    return outcome


def learning_for(runtime: Any) -> Any:
    """A not yet started scheduler that re-learns every ``learn_every_hours``; None when off.

    Uses :class:`attune.training.schedule.RetrainScheduler` (logs and survives failures); a tick
    is skipped while no new event reached the lake since the previous successful run.
    """
    settings = runtime.settings.segments
    if settings.learn_every_hours is None:
        return None
    from attune.training.schedule import RetrainScheduler

    marks: dict[str, Any] = {}

    def changed() -> bool:
        marks["pending"] = _lake_mark(runtime)
        return marks["pending"] != marks.get("done")

    def job() -> LearnOutcome:
        outcome = learn_and_store(runtime, method=settings.learn_method)
        marks["done"] = marks.get("pending")
        log.info("scheduled learning stored %d segments", len(outcome.specs))
        return outcome

    return RetrainScheduler(
        job, settings.learn_every_hours * 3600.0, changed=changed, name="attune-segments-learn"
    )


def _lake_mark(runtime: Any) -> Any:
    """Something that changes when the lake gets new events (its files and their sizes)."""
    lake = runtime.settings.lake_dir
    return tuple(sorted((str(p), p.stat().st_size) for p in lake.rglob("*.parquet"))) if lake.exists() else ()


def _finite(value: float) -> float | None:
    """JSON has no NaN: a missing number is stored as null."""
    return None if value is None or not math.isfinite(value) else float(value)
