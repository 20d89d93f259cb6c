"""``attune train``: fit, evaluate on the DESIGN.md holdout, refit on everything, register.

1. The per-user temporal holdout splits the data: each user's latest 20% is the *test* part.
2. The model is the one named, with its defaults, or (``auto``) the one the tuner picks using
   the *training* part alone (it carves its own validation split from it).
3. That configuration is fitted on the training part and scored on the test part: the
   figures registered with the version are held-out figures.
4. It is fitted again on all the data (what serving uses), saved as an artifact and
   registered; by default it is promoted at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from attune.errors import ValidationFailed
from attune.evaluation.beyond import beyond_accuracy
from attune.evaluation.offline import DEFAULT_KS, evaluate_model
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.settings import Settings
from attune.training import catalog
from attune.training.artifacts import ModelBundle, popularity_of, save_artifact
from attune.training.loading import TrainingData, load_training_data
from attune.training.progress import Progress, Silent
from attune.training.registry import ModelRegistry, ModelVersion
from attune.training.tuner import Budget, Choice, choose

#: Model names ``attune train --model`` accepts besides the catalog's.
AUTO = "auto"

Chooser = Callable[..., Choice]


@dataclass
class TrainReport:
    """What one training run did."""

    version: ModelVersion
    name: str
    params: dict[str, Any]
    test_metrics: dict[str, float]
    beyond: dict[str, float | None]
    choice: Choice | None
    n_train: int
    n_test: int
    test_users: int
    promoted: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def models_dir(settings: Settings) -> Path:
    """Where artifacts live: ``DATA_DIR/models``."""
    return settings.data_dir / "models"


def registry_for(engine: Engine, settings: Settings) -> ModelRegistry:
    """The registry of an installation."""
    return ModelRegistry(engine, models_dir(settings))


def budget_from(settings: Settings) -> Budget:
    """The tuning budget configured under ``[training]``."""
    training = settings.training
    return Budget(
        trials=training.tune_trials,
        timeout_seconds=training.tune_timeout_seconds,
        max_validation_users=training.max_validation_users,
    )


def holdout(data: Interactions) -> tuple[Interactions, Interactions]:
    """The outer DESIGN.md split, refusing data where it leaves nothing to train on."""
    train, test = temporal_holdout(data)
    if len(train) == 0:
        raise ValidationFailed(
            "every person has a single interaction, so holding out each one's latest leaves nothing "
            "to train on; more interactions per person are needed"
        )
    return train, test


def train(
    engine: Engine,
    settings: Settings,
    model: str = AUTO,
    *,
    since: float | None = None,
    until: float | None = None,
    promote: bool = True,
    progress: Progress | None = None,
    actor: str = "cli",
) -> TrainReport:
    """Load the store's interactions and run :func:`train_on` over them."""
    progress = progress or Silent()
    progress.stage("loading interactions from the store")
    data = load_training_data(engine, settings, since, until)
    return train_on(
        data,
        registry_for(engine, settings),
        model,
        budget=budget_from(settings),
        promote=promote,
        progress=progress,
        actor=actor,
    )


def train_on(
    data: TrainingData,
    registry: ModelRegistry,
    model: str = AUTO,
    *,
    budget: Budget | None = None,
    candidates: Sequence[str] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    promote: bool = True,
    progress: Progress | None = None,
    actor: str = "cli",
    chooser: Chooser = choose,
) -> TrainReport:
    """Choose or take the model, evaluate it on the held-out part, refit on all, register."""
    started = time.perf_counter()
    progress = progress or Silent()
    if model != AUTO:
        catalog.check_name(model)
    interactions = data.interactions
    train_part, test_part = holdout(interactions)
    progress.stage(
        f"split {len(interactions):,} interactions: {len(train_part):,} training, {len(test_part):,} held out"
    )
    choice: Choice | None = None
    if model == AUTO:
        choice = chooser(train_part, data.items, candidates=candidates, budget=budget, progress=progress)
        name, params = choice.best.name, dict(choice.best.params)
    else:
        name, params = model, catalog.defaults(model)
    progress.stage(f"fitting {name} on the training part and scoring the held-out part")
    # One thread for the held-out fit, so the registered figures are repeatable.
    fitted = catalog.fit(catalog.build(name, catalog.reproducible(name, params)), train_part, data.items)
    evaluation = evaluate_model(fitted, test_part, ks=ks)
    beyond = beyond_accuracy([row[:10] for row in evaluation.lists], train_part)
    progress.stage(f"refitting {name} on all {len(interactions):,} interactions")
    final = catalog.fit(catalog.build(name, params), interactions, data.items)
    data_from, data_to = data.time_range
    details: dict[str, Any] = {
        "selection": AUTO if choice else "named",
        "split": "per-user temporal holdout, latest 20% (at least one) per user",
        "n_train": len(train_part),
        "n_test": len(test_part),
        "test_users": evaluation.n_users,
        "beyond@10": beyond,
        "notes": data.notes,
    }
    if choice is not None:
        details["tuning"] = choice.to_dict()
    version = registry.reserve(
        name,
        params,
        data_from=data_from,
        data_to=data_to,
        n_interactions=len(interactions),
        n_users=len(set(interactions.users.tolist())),
        n_items=len(set(interactions.items.tolist())),
        metrics=evaluation.metrics,
        details=details,
    )
    progress.stage(f"saving {version}")
    popular_items, popular_scores = popularity_of(interactions)
    bundle = ModelBundle(version, name, params, final, popular_items, popular_scores)
    try:
        save_artifact(bundle, registry.models_dir / version)
    except OSError as exc:
        registry.mark_failed(version, str(exc))
        raise ValidationFailed(
            f"the model artifact could not be written to {registry.models_dir}: {exc}"
        ) from exc
    registered = registry.mark_ready(version)
    if promote:
        registered = registry.promote(version, actor=actor)
    details["seconds"] = round(time.perf_counter() - started, 2)
    return TrainReport(
        version=registered,
        name=name,
        params=params,
        test_metrics=evaluation.metrics,
        beyond=beyond,
        choice=choice,
        n_train=len(train_part),
        n_test=len(test_part),
        test_users=evaluation.n_users,
        promoted=promote,
        seconds=time.perf_counter() - started,
        notes=list(data.notes) + (list(choice.notes) if choice else []),
    )


def describe_params(params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """``l2=302.9, k=200`` for messages: floats shortened, values equal to ``defaults`` left out,
    nested component settings (ensembles) shown by their names."""

    def short(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, Mapping):
            return "+".join(str(k) for k in value)
        return str(value)

    shown = {k: v for k, v in params.items() if defaults is None or k not in defaults or defaults[k] != v}
    return ", ".join(f"{k}={short(v)}" for k, v in sorted(shown.items())) or "defaults"
