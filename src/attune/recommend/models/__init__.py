"""Recommendation models behind one estimator API (see :mod:`.base`), and their catalog.

The catalog is what the trainer, the tuner and the CLI use:

- ``MODELS[name]`` — the model class for a short name;
- ``make_model(name, **params)`` — a fresh, unfitted model (unknown names/params are refused);
- ``DEFAULTS[name]`` — the default hyper-parameters;
- ``search_space(name, trial)`` — hyper-parameters drawn from an Optuna trial for tuning.

Optuna parameter names are prefixed with the model name (``"ease.l2"``), so one study may tune
several models without clashing distributions; the returned dict uses the plain names. A
hyper-parameter that may be off (``None``) is drawn behind an on/off switch; ``SWITCHES`` maps
each switch to the hyper-parameter it guards, so a tuner can express "the defaults" as a trial.
"""

from __future__ import annotations

from typing import Any

from attune.errors import ValidationFailed
from attune.recommend.models.base import NotFittedError, Recommender, UnknownItem
from attune.recommend.models.content import ContentBased
from attune.recommend.models.ease import EASE
from attune.recommend.models.factors import ALS, BPR
from attune.recommend.models.hybrid import WeightedHybrid
from attune.recommend.models.itemknn import ItemKNN
from attune.recommend.models.popularity import Popularity, Trending
from attune.recommend.models.rerank import LearnedReranker

#: Every model, by the short name the CLI, registry and API responses use.
MODELS: dict[str, type[Recommender]] = {
    "popular": Popularity,
    "trending": Trending,
    "itemknn": ItemKNN,
    "ease": EASE,
    "als": ALS,
    "bpr": BPR,
    "content": ContentBased,
    "hybrid": WeightedHybrid,
    "rerank": LearnedReranker,
}

#: Default hyper-parameters per model (what ``make_model(name)`` uses).
DEFAULTS: dict[str, dict[str, Any]] = {name: cls().get_params() for name, cls in MODELS.items()}


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``, or a clear error listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValidationFailed(f"model: unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def make_model(name: str, **params: Any) -> Recommender:
    """A fresh, unfitted model ``name`` with ``params`` overriding its defaults."""
    cls = model_class(name)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise ValidationFailed(
            f"{name}: unknown hyper-parameter(s) {', '.join(unknown)}; valid are {', '.join(cls.param_names())}"
        )
    return cls(**params)


#: On/off switch of a search space -> the hyper-parameter that is None when the switch is off.
SWITCHES: dict[str, str] = {"decay": "half_life_days", "recency": "recency_tau"}

#: Range of ``recency_tau`` (in items: the weight of the item ``n`` positions back is ``e^(-n/τ)``).
RECENCY_TAU_RANGE = (1.0, 1000.0)


def _recency(trial: Any, prefix: str) -> dict[str, Any]:
    """``recency_tau``: off, or a time constant drawn on a log scale."""
    on = trial.suggest_categorical(prefix + "recency", [False, True])
    low, high = RECENCY_TAU_RANGE
    return {"recency_tau": trial.suggest_float(prefix + "recency_tau", low, high, log=True) if on else None}


def search_space(name: str, trial: Any) -> dict[str, Any]:
    """Hyper-parameters for model ``name`` drawn from an Optuna ``trial``.

    Models whose inner workings are tuned by ``fit`` itself (hybrid weights) or that have nothing
    worth tuning return only what is meaningful; the dict may be empty.
    """
    model_class(name)
    p = f"{name}."
    if name == "popular":
        decay = trial.suggest_categorical(p + "decay", [False, True])
        return {
            "half_life_days": trial.suggest_float(p + "half_life_days", 1.0, 3650.0, log=True)
            if decay
            else None
        }
    if name == "trending":
        return {
            "window_days": trial.suggest_float(p + "window_days", 1.0, 30.0, log=True),
            "baseline_days": trial.suggest_float(p + "baseline_days", 7.0, 180.0, log=True),
        }
    if name == "itemknn":
        return {
            "k": trial.suggest_int(p + "k", 20, 500, log=True),
            "shrinkage": trial.suggest_float(p + "shrinkage", 0.0, 200.0),
            **_recency(trial, p),
        }
    if name == "ease":
        return {"l2": trial.suggest_float(p + "l2", 10.0, 5000.0, log=True), **_recency(trial, p)}
    if name == "als":
        return {
            "factors": trial.suggest_int(p + "factors", 16, 256, log=True),
            "regularization": trial.suggest_float(p + "regularization", 1e-4, 10.0, log=True),
            "iterations": trial.suggest_int(p + "iterations", 5, 50),
            "alpha": trial.suggest_float(p + "alpha", 0.5, 100.0, log=True),
            **_recency(trial, p),
        }
    if name == "bpr":
        return {
            "factors": trial.suggest_int(p + "factors", 16, 256, log=True),
            "learning_rate": trial.suggest_float(p + "learning_rate", 1e-3, 0.2, log=True),
            "regularization": trial.suggest_float(p + "regularization", 1e-5, 0.1, log=True),
            "iterations": trial.suggest_int(p + "iterations", 20, 300, log=True),
            "fold_in_scale": trial.suggest_float(p + "fold_in_scale", 0.5, 4.0, log=True),
            **_recency(trial, p),
        }
    if name == "content":
        return {
            "text_weight": trial.suggest_float(p + "text_weight", 0.0, 1.0),
            "categorical_weight": trial.suggest_float(p + "categorical_weight", 0.0, 1.0),
            "numeric_weight": trial.suggest_float(p + "numeric_weight", 0.0, 1.0),
            **_recency(trial, p),
        }
    if name == "rerank":
        return {
            "n_candidates": trial.suggest_int(p + "n_candidates", 20, 200, log=True),
            "n_estimators": trial.suggest_int(p + "n_estimators", 50, 500, log=True),
            "learning_rate": trial.suggest_float(p + "learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int(p + "num_leaves", 7, 63, log=True),
        }
    return {}  # hybrid: its blend weights are fitted inside fit()


__all__ = [
    "ALS",
    "BPR",
    "DEFAULTS",
    "EASE",
    "MODELS",
    "SWITCHES",
    "ContentBased",
    "ItemKNN",
    "LearnedReranker",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "Trending",
    "UnknownItem",
    "WeightedHybrid",
    "make_model",
    "model_class",
    "search_space",
]
