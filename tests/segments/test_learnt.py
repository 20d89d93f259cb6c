"""Learnt segments find planted clusters, pick k by silhouette and name what sets each apart."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from attune.errors import ValidationFailed
from attune.segments.learnt import learn_segments

NAMES = ["engagement_score", "monetary", "recency_days", "frequency"]


def planted(n_per: int = 150, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Three groups on very different scales: engaged (high engagement), spenders (high monetary),
    lapsed (high recency_days). Columns also differ in unit, so scaling matters."""
    rng = np.random.default_rng(seed)
    centres = np.array(
        [
            [0.9, 20.0, 1.0, 40.0],  # engaged
            [0.3, 900.0, 3.0, 10.0],  # spenders
            [0.05, 5.0, 25.0, 2.0],  # lapsed
        ]
    )
    spread = np.array([0.04, 60.0, 1.0, 3.0])
    rows, truth = [], []
    for label, centre in enumerate(centres):
        rows.append(centre + rng.normal(size=(n_per, 4)) * spread)
        truth += [label] * n_per
    keys = [f"u:{i}" for i in range(3 * n_per)]
    return keys, np.vstack(rows), np.array(truth)


def labels_of(result, keys: list[str]) -> np.ndarray:
    index = {k: i for i, k in enumerate(keys)}
    labels = np.full(len(keys), -1)
    for s, segment in enumerate(result.segments):
        for member in segment.members:
            if labels[index[member.subject_key]] == -1 or member.confidence > 0.5:
                labels[index[member.subject_key]] = s
    return labels


@pytest.mark.parametrize("method", ["kmeans", "gmm", "dbscan"])
def test_planted_clusters_are_found(method: str) -> None:
    keys, features, truth = planted()
    result = learn_segments(keys, features, NAMES, method=method, k_range=(2, 6), min_samples=8)
    assert result.k == 3
    assert adjusted_rand_score(truth, labels_of(result, keys)) > 0.95
    if method != "dbscan":
        assert max(result.scores, key=lambda k: result.scores[k]) == 3  # silhouette picked the truth
    # Each cluster is described by the feature its group was planted high on.
    expected = {0: "engagement_score", 1: "monetary", 2: "recency_days"}
    for segment in result.segments:
        members = [int(m.subject_key[2:]) for m in segment.members if m.confidence > 0.5]
        group = int(np.bincount(truth[members]).argmax())
        top = segment.distinctions[0]
        assert (
            top.effect > 0
            and top.feature == expected[group]
            or (
                group == 0 and top.feature == "frequency"  # engaged people also use the product most
            )
        ), (segment.description, group)
        assert segment.name.startswith("learnt_") and "% of people" in segment.description


def test_mixture_memberships_carry_probabilities() -> None:
    keys, features, _ = planted(seed=3)
    # One person halfway between the engaged and the spenders.
    keys.append("u:between")
    features = np.vstack([features, [0.6, 460.0, 2.0, 25.0]])
    result = learn_segments(keys, features, NAMES, method="gmm", k=3, min_confidence=0.0)
    for segment in result.segments:
        confidences = np.array([m.confidence for m in segment.members])
        assert ((confidences >= 0) & (confidences <= 1)).all()
    per_person: dict[str, float] = {}
    for segment in result.segments:
        for m in segment.members:
            per_person[m.subject_key] = per_person.get(m.subject_key, 0.0) + m.confidence
    assert all(abs(total - 1.0) < 1e-4 for total in per_person.values())  # probabilities sum to 1


def test_missing_values_are_imputed_not_fatal() -> None:
    keys, features, truth = planted(seed=5)
    features[::7, 3] = np.nan
    result = learn_segments(keys, features, NAMES, method="kmeans", k=3)
    assert adjusted_rand_score(truth, labels_of(result, keys)) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "spectral"}, "method"),
        ({"k": 1}, "at least 2"),
        ({"prefix": "Bad Name"}, "prefix"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs: dict, message: str) -> None:
    keys, features, _ = planted(n_per=10)
    with pytest.raises(ValidationFailed, match=message):
        learn_segments(keys, features, NAMES, **kwargs)


def test_shape_mismatch_is_refused() -> None:
    keys, features, _ = planted(n_per=10)
    with pytest.raises(ValidationFailed, match="matrix"):
        learn_segments(keys, features, NAMES[:3])
    with pytest.raises(ValidationFailed, match="finite"):
        learn_segments(keys, np.where(features > 800, np.inf, features), NAMES)


def test_learnt_from_offline_features(tmp_path) -> None:
    """End to end: behaviour in the lake -> offline features -> two clusters matching the plant."""
    import pyarrow as pa

    from attune.features.offline import OfflineSource, offline_values
    from attune.features.refs import FeatureRef
    from attune.lake.layout import write_part
    from attune.lake.schema import EVENT_SCHEMA
    from attune.segments.learnt import matrix_from_offline

    t0 = 1_767_225_600
    rng = np.random.default_rng(7)
    rows = []
    for p in range(40):
        buyer = p < 20
        for j in range(int(rng.integers(3, 6)) if buyer else int(rng.integers(15, 25))):
            rows.append(("purchase" if buyer else "view", f"p{p}", 50.0 + rng.normal() if buyer else None))
    table = pa.table(
        {
            "offset": pa.array(range(1, len(rows) + 1), pa.int64()),
            "event_id": [f"e{i}" for i in range(len(rows))],
            "type": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "value": pa.array([r[2] for r in rows], pa.float64()),
            "timestamp": pa.array(
                [(t0 + i) * 1_000_000 for i in range(len(rows))], EVENT_SCHEMA.field("timestamp").type
            ),
            "received_at": pa.array([t0 * 1_000_000] * len(rows), EVENT_SCHEMA.field("received_at").type),
        }
    )
    full = pa.table(
        [
            table.column(f.name) if f.name in table.column_names else pa.nulls(len(rows), f.type)
            for f in EVENT_SCHEMA
        ],
        schema=EVENT_SCHEMA,
    )
    write_part(tmp_path, t0 // 86400, full)
    refs = [
        FeatureRef("feature", name="monetary"),
        FeatureRef("feature", name="frequency"),
        FeatureRef("context", name="device"),
    ]
    offline = offline_values(OfflineSource(tmp_path), refs, t0 + 86400)
    keys, matrix, names = matrix_from_offline(offline)
    assert names == ["feature:monetary", "feature:frequency"]  # text context is left out
    result = learn_segments(keys, matrix, names, method="kmeans", k_range=(2, 4))
    truth = np.array([int(k[3:]) < 20 for k in keys])
    assert result.k == 2
    assert adjusted_rand_score(truth, labels_of(result, keys)) == 1.0
    effects = [{d.feature: d.effect for d in s.distinctions} for s in result.segments]
    buyers = [s for s, e in zip(result.segments, effects, strict=True) if e["feature:monetary"] > 0]
    assert len(buyers) == 1 and {m.subject_key for m in buyers[0].members} == {f"u:p{i}" for i in range(20)}
    assert "high feature:monetary" in buyers[0].description
