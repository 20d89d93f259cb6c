"""Segments learnt from data: k-means, DBSCAN and Gaussian mixtures over per-person features.

Inputs are per-person feature vectors (typically :func:`attune.features.offline.offline_values`
for numeric refs, see :func:`matrix_from_offline`). Missing values are imputed with the column
median and every column is standardized (zero mean, unit variance), so no feature dominates by
its unit. The number of clusters of k-means and Gaussian mixtures is chosen by the silhouette
score over ``k_range`` (computed on a sample for large inputs); DBSCAN's radius comes from the
distances to each point's ``min_samples``-th neighbour. Each cluster is described by the
features whose standardized mean differs most from everyone else's (the effect size, in standard
deviations). Gaussian mixtures give each person a membership probability per cluster: a person
holds every cluster whose probability reaches ``min_confidence``, with that confidence.

The result is plain dataclasses; storing them as segments is the segments engine's job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from attune.errors import ValidationFailed

Method = Literal["kmeans", "gmm", "dbscan"]
METHODS: tuple[Method, ...] = ("kmeans", "gmm", "dbscan")


@dataclass(frozen=True)
class LearntMember:
    """One person in a learnt segment, with the confidence of that membership in [0, 1]."""

    subject_key: str
    confidence: float


@dataclass(frozen=True)
class Distinction:
    """How a cluster differs on one feature: standardized mean difference (in SDs) and raw means."""

    feature: str
    effect: float
    cluster_mean: float
    others_mean: float


@dataclass(frozen=True)
class LearntSegment:
    """One cluster: its name, a readable description, what sets it apart, and its members."""

    name: str
    description: str
    method: Method
    distinctions: list[Distinction]
    members: list[LearntMember]

    @property
    def size(self) -> int:
        """Number of members."""
        return len(self.members)


@dataclass(frozen=True)
class Clustering:
    """The outcome of one clustering run."""

    method: Method
    k: int
    #: Silhouette score of the chosen clustering (NaN when it cannot be computed).
    silhouette: float
    #: Silhouette per tried k (k-means and Gaussian mixtures).
    scores: dict[int, float]
    segments: list[LearntSegment]
    #: People in no cluster (DBSCAN noise).
    unassigned: list[str] = field(default_factory=list)


def learn_segments(
    subject_keys: Sequence[str],
    features: np.ndarray,
    feature_names: Sequence[str],
    *,
    method: Method = "kmeans",
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    prefix: str = "learnt",
    min_confidence: float = 0.1,
    min_samples: int = 10,
    sample_size: int = 5000,
    top_features: int = 3,
    random_state: int = 0,
) -> Clustering:
    """Cluster people by their feature vectors (rows of ``features``) and describe the clusters.

    ``k`` fixes the number of clusters (k-means, gmm); otherwise the best silhouette over
    ``k_range`` (inclusive) wins. Raises :class:`ValidationFailed` for unusable input.
    """
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    keys = list(subject_keys)
    names = list(feature_names)
    raw = np.asarray(features, dtype=np.float64)
    _check(keys, raw, names, method, k, k_range, prefix)
    scaled = standardize(raw)
    rng = np.random.default_rng(random_state)
    sample = rng.choice(len(keys), size=min(sample_size, len(keys)), replace=False)

    def silhouette(labels: np.ndarray) -> float:
        chosen = labels[sample]
        usable = chosen >= 0
        if len(set(chosen[usable].tolist())) < 2 or usable.sum() <= len(set(chosen[usable].tolist())):
            return float("nan")
        return float(silhouette_score(scaled[sample][usable], chosen[usable]))

    scores: dict[int, float] = {}
    confidences: np.ndarray | None = None
    if method == "dbscan":
        labels = DBSCAN(eps=_dbscan_radius(scaled[sample], min_samples), min_samples=min_samples).fit_predict(
            scaled
        )
    else:
        candidates = [k] if k is not None else list(range(k_range[0], min(k_range[1], len(keys) - 1) + 1))
        best: tuple[float, int, object] | None = None
        for n in candidates:
            if method == "kmeans":
                model = KMeans(n_clusters=n, n_init=4, random_state=random_state).fit(scaled)
                labels = model.labels_
            else:
                model = GaussianMixture(
                    n_components=n, covariance_type="full", random_state=random_state, n_init=2
                )
                labels = model.fit(scaled).predict(scaled)
            scores[n] = silhouette(labels)
            score = -np.inf if np.isnan(scores[n]) else scores[n]
            if best is None or score > best[0]:
                best = (score, n, model)
        assert best is not None
        model = best[2]
        if method == "kmeans":
            labels = model.labels_  # type: ignore[attr-defined]
        else:
            confidences = model.predict_proba(scaled)  # type: ignore[attr-defined]
            labels = confidences.argmax(axis=1)
    clusters = sorted({int(c) for c in labels.tolist() if c >= 0}, key=lambda c: -int((labels == c).sum()))
    segments = []
    for rank, cluster in enumerate(clusters, start=1):
        inside = labels == cluster
        distinctions = _distinctions(raw, scaled, inside, names)[:top_features]
        if confidences is not None:
            column = confidences[:, cluster]
            chosen = np.flatnonzero(column >= min_confidence)
            members = [LearntMember(keys[i], round(float(column[i]), 6)) for i in chosen]
        else:
            members = [LearntMember(keys[i], 1.0) for i in np.flatnonzero(inside)]
        segments.append(
            LearntSegment(
                name=f"{prefix}_{rank}",
                description=describe(distinctions, int(inside.sum()), len(keys)),
                method=method,
                distinctions=distinctions,
                members=members,
            )
        )
    return Clustering(
        method=method,
        k=len(clusters),
        silhouette=silhouette(labels),
        scores=scores,
        segments=segments,
        unassigned=[keys[i] for i in np.flatnonzero(labels < 0)],
    )


def matrix_from_offline(
    offline: object, refs: Sequence[object] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """(subject keys, feature matrix, column names) from :class:`OfflineFeatures` numeric refs.

    Context refs (text) are left out; ``refs`` defaults to every numeric ref computed.
    """
    values = offline.values  # type: ignore[attr-defined]
    chosen = [r for r in (refs if refs is not None else values) if values[r].dtype != object]
    if not chosen:
        raise ValidationFailed("refs: at least one numeric feature is needed to learn segments")
    matrix = np.column_stack([values[r].astype(np.float64) for r in chosen])
    return list(offline.subject_keys.tolist()), matrix, [r.column for r in chosen]  # type: ignore[attr-defined]


def standardize(raw: np.ndarray) -> np.ndarray:
    """Median-impute missing values, then scale every column to zero mean and unit variance."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    filled = SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(raw)
    return StandardScaler().fit_transform(filled)


def describe(distinctions: Sequence[Distinction], size: int, total: int) -> str:
    """``"12% of people; high engagement_score (+1.8 sd), low recency_days (-1.1 sd)"``."""
    share = f"{100 * size / total:.0f}% of people" if total else "no people"
    parts = [
        f"{'high' if d.effect > 0 else 'low'} {d.feature} ({d.effect:+.1f} sd; mean {d.cluster_mean:.3g} vs {d.others_mean:.3g})"
        for d in distinctions
    ]
    return share + ("; " + ", ".join(parts) if parts else "")


def _distinctions(
    raw: np.ndarray, scaled: np.ndarray, inside: np.ndarray, names: list[str]
) -> list[Distinction]:
    """Features ordered by |standardized mean difference| between the cluster and the rest."""
    if inside.all() or not inside.any():
        return []
    effect = scaled[inside].mean(axis=0) - scaled[~inside].mean(axis=0)
    order = np.argsort(-np.abs(effect), kind="stable")
    return [
        Distinction(
            feature=names[j],
            effect=round(float(effect[j]), 4),
            cluster_mean=float(np.nanmean(raw[inside, j]))
            if np.isfinite(raw[inside, j]).any()
            else float("nan"),
            others_mean=float(np.nanmean(raw[~inside, j]))
            if np.isfinite(raw[~inside, j]).any()
            else float("nan"),
        )
        for j in order
        if effect[j] != 0
    ]


def _dbscan_radius(points: np.ndarray, min_samples: int) -> float:
    """A radius that connects dense regions: a high quantile of each point's k-neighbour distance."""
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples, len(points) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    radius = float(np.quantile(distances[:, -1], 0.9))
    return radius if radius > 0 else 1e-6


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")


def _check(
    keys: list[str],
    raw: np.ndarray,
    names: list[str],
    method: str,
    k: int | None,
    k_range: tuple[int, int],
    prefix: str,
) -> None:
    if method not in METHODS:
        raise ValidationFailed(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
    if raw.ndim != 2 or raw.shape[0] != len(keys) or raw.shape[1] != len(names):
        raise ValidationFailed(
            f"features: expected a {len(keys)} x {len(names)} matrix (people x feature names), got shape {raw.shape}"
        )
    if raw.shape[1] == 0:
        raise ValidationFailed("features: at least one feature column is needed")
    if np.isinf(raw).any():
        raise ValidationFailed("features: values must be finite (NaN marks a missing value)")
    if not _NAME.match(prefix):
        raise ValidationFailed("prefix: lower-case letters, digits and _ only, starting with a letter")
    low, high = (k, k) if k is not None else k_range
    if low < 2 or high < low:
        raise ValidationFailed(f"k: clusters must number at least 2 (got {k if k is not None else k_range})")
    if len(keys) < max(low + 1, 3):
        raise ValidationFailed(f"features: {len(keys)} people are too few to form {low} clusters")
