"""Training: held-out figures from the DESIGN.md split, refit on everything, registration;
``auto`` chooses from the training part only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from planted import parity, planted_data

from attune.errors import ValidationFailed
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.runtime import Runtime
from attune.training import tuner
from attune.training.artifacts import load_artifact
from attune.training.registry import ModelRegistry
from attune.training.trainer import train, train_on
from attune.training.tuner import Budget, Candidate, Choice

FAST = Budget(trials=2, timeout_seconds=60)


@pytest.fixture
def registry(runtime: Runtime, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(runtime.engine, tmp_path / "models")


def triples(data: Interactions) -> set[tuple[str, str, float]]:
    return {
        (str(data.user_ids[u]), str(data.item_ids[i]), float(t))
        for u, i, t in zip(data.users, data.items, data.timestamps, strict=True)
    }


def test_a_named_model_is_evaluated_refit_registered_and_promoted(registry: ModelRegistry) -> None:
    data = planted_data()
    report = train_on(data, registry, "ease")
    train_part, test_part = temporal_holdout(data.interactions)
    assert (report.n_train, report.n_test) == (len(train_part), len(test_part))
    # Each user's held-out item is one of the three unseen items of their parity: always in the top 10.
    assert report.test_metrics["recall@10"] == 1.0 and report.test_metrics["hit_rate@5"] == 1.0
    entry = report.version
    assert (entry.version, entry.name, entry.status) == ("v1", "ease", "promoted")
    assert entry.params == {"l2": 250.0, "recency_tau": None}
    assert entry.n_interactions == len(data.interactions) and entry.n_users == 40 and entry.n_items == 20
    assert (entry.data_from, entry.data_to) == data.time_range
    assert entry.metrics["ndcg@10"] == report.test_metrics["ndcg@10"]
    assert entry.details["n_test"] == len(test_part) and "coverage" in entry.details["beyond@10"]
    bundle = load_artifact(entry.artifact_path, expected_version="v1")
    # The served model was refit on all data: it knows every interaction, held-out ones included.
    assert bundle.model.user_items_.nnz == len(data.interactions)
    ids, _ = bundle.model.recommend("u:u0", k=2)
    assert all(parity(i) == 0 for i in ids)


def test_no_promote_registers_a_ready_version(registry: ModelRegistry) -> None:
    train_on(planted_data(), registry, "popular")
    report = train_on(planted_data(), registry, "itemknn", promote=False)
    assert report.version.status == "ready"
    assert registry.promoted().version == "v1"


def test_auto_only_ever_sees_the_training_part(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = planted_data()
    outer_train, outer_test = temporal_holdout(data.interactions)
    allowed, forbidden = triples(outer_train), triples(outer_test)
    seen: list[set[tuple[str, str, float]]] = []
    real_score = tuner.score

    def spying_score(
        name: str, params: dict[str, Any], train_data: Interactions, valid: Interactions, *rest: Any
    ) -> float:
        seen.extend([triples(train_data), triples(valid)])
        return real_score(name, params, train_data, valid, *rest)

    monkeypatch.setattr(tuner, "score", spying_score)
    report = train_on(data, registry, "auto", budget=FAST, candidates=["popular", "ease", "itemknn"])
    assert len(seen) >= 2 * 5  # popular once, ease and itemknn twice each
    for part in seen:
        assert part <= allowed and not part & forbidden
    validation = seen[1]
    assert validation and len(validation) < len(allowed)  # the inner split carved from training
    assert report.choice is not None and report.name == report.choice.best.name
    assert report.version.details["selection"] == "auto"
    assert {c["name"] for c in report.version.details["tuning"]["candidates"]} == {
        "popular",
        "ease",
        "itemknn",
    }


def test_auto_picks_the_best_validation_score(registry: ModelRegistry) -> None:
    def chooser(train_part: Interactions, items: Any, **_: Any) -> Choice:
        best = Candidate("itemknn", {"k": 5, "shrinkage": 0.0}, 0.9, 1, 0.0)
        worse = Candidate("popular", {}, 0.1, 1, 0.0)
        return Choice(best, [worse, best], "ndcg@10", len(train_part), 0, 0, 0.0)

    report = train_on(planted_data(), registry, "auto", chooser=chooser)
    assert (report.name, report.params) == ("itemknn", {"k": 5, "shrinkage": 0.0})


def test_auto_beats_popularity_on_planted_data(registry: ModelRegistry) -> None:
    report = train_on(planted_data(), registry, "auto", budget=FAST, candidates=["popular", "ease"])
    popular = next(c for c in report.choice.candidates if c.name == "popular")
    assert report.name == "ease" and report.choice.best.score > popular.score
    assert report.test_metrics["recall@10"] == 1.0


def test_training_from_the_store(planted_runtime: Runtime) -> None:
    report = train(planted_runtime.engine, planted_runtime.settings, "itemknn")
    assert report.version.n_interactions == 320
    assert Path(report.version.artifact_path).parent == planted_runtime.settings.data_dir / "models"


@pytest.mark.parametrize("model", ["nope", "AUTO"])
def test_unknown_models_are_refused(registry: ModelRegistry, model: str) -> None:
    with pytest.raises(ValidationFailed, match="unknown model"):
        train_on(planted_data(), registry, model)
    assert registry.list() == []


def test_one_interaction_per_person_leaves_nothing_to_train(registry: ModelRegistry) -> None:
    data = planted_data(per_user=1)
    with pytest.raises(ValidationFailed, match="single interaction"):
        train_on(data, registry, "ease")


def test_auto_with_a_single_training_interaction_per_person_is_a_clear_error(registry: ModelRegistry) -> None:
    # Two interactions each: one trains, one is held out; the inner split then has nothing to fit.
    with pytest.raises(ValidationFailed, match="too little data to tune"):
        train_on(planted_data(per_user=2), registry, "auto", budget=FAST)


def test_duplicate_laden_data_trains(registry: ModelRegistry) -> None:
    data = planted_data()
    doubled = data.interactions
    repeated = Interactions(
        np.tile(doubled.users, 5),
        np.tile(doubled.items, 5),
        np.tile(doubled.timestamps, 5) + np.repeat(np.arange(5), len(doubled)),
        np.tile(doubled.weights, 5),
        doubled.user_ids,
        doubled.item_ids,
    )
    data.interactions = repeated
    report = train_on(data, registry, "ease")
    assert report.test_metrics["hit_rate@10"] > 0.5
