"""The model catalog as the trainer sees it: names, defaults, search spaces, construction, fit.

The models live in :mod:`attune.recommend.models`; this adapter is the one place that knows
how the trainer calls them, so the rest of the package never imports a model class.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import Recommender


def _models() -> Any:
    from attune.recommend import models

    return models


def model_names() -> list[str]:
    """Every model the catalog can build."""
    return list(_models().MODELS)


def check_name(name: str) -> str:
    """``name`` when the catalog knows it; a clear error listing the choices otherwise."""
    names = model_names()
    if name not in names:
        raise ValidationFailed(f"unknown model {name!r}; choose one of: {', '.join(names)}")
    return name


def defaults(name: str) -> dict[str, Any]:
    """The default hyper-parameters of ``name``."""
    return dict(_models().DEFAULTS.get(check_name(name), {}))


def build(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """An unfitted model ``name`` with ``params`` over its defaults."""
    merged = {**defaults(name), **dict(params or {})}
    try:
        return _models().make_model(name, **merged)
    except TypeError as exc:
        raise ValidationFailed(f"bad hyper-parameters for {name}: {exc}") from exc


def switches() -> dict[str, str]:
    """Search-space on/off switches -> the hyper-parameter each guards (None when off)."""
    return dict(_models().SWITCHES)


def reproducible(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` set to train on one thread, so that a fit gives the same model every time.

    BPR's multi-threaded updates (and LightGBM's) depend on thread scheduling; with the fixed
    ``random_state`` each model has, one thread makes tuning scores — and the choice — repeatable.
    Ensemble components given by name or mapping get the same treatment.
    """
    out = dict(params)
    if "num_threads" in _models().model_class(name).param_names():
        out["num_threads"] = 1
    components = out.get("components")
    if isinstance(components, Mapping) or (isinstance(components, list | tuple) and components):
        spec = components if isinstance(components, Mapping) else {str(c): {} for c in components}
        out["components"] = {
            str(c): reproducible(str(c), dict(p or {})) if str(c) in model_names() else dict(p or {})
            for c, p in spec.items()
        }
    return out


def suggest(name: str, trial: Any) -> dict[str, Any]:
    """Hyper-parameters for one Optuna ``trial`` of ``name`` (empty when it has none to tune)."""
    return dict(_models().search_space(check_name(name), trial) or {})


def fit(model: Recommender, data: Interactions, items: Mapping[str, Mapping[str, Any]] | None) -> Recommender:
    """Fit ``model``, handing item attributes to models whose ``fit`` takes them."""
    if "items" in inspect.signature(model.fit).parameters:
        return model.fit(data, items=items)
    return model.fit(data)
