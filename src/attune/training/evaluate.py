"""``attune evaluate``: the registered configurations (or named models) compared on one split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from attune.errors import ValidationFailed
from attune.evaluation.compare import Comparison, ModelSpec, compare
from attune.evaluation.report import write_report
from attune.settings import Settings
from attune.training import catalog
from attune.training.loading import load_training_data
from attune.training.progress import Progress
from attune.training.registry import ModelRegistry

#: Models compared when none are named and none are registered yet.
DEFAULT_MODELS: tuple[str, ...] = ("popular", "itemknn", "ease", "als")


def resolve_specs(registry: ModelRegistry, tokens: Sequence[str] | None) -> list[ModelSpec]:
    """Specs for ``tokens`` (registry versions such as ``v3`` or catalog model names).

    Without tokens: every distinct configuration in the registry, newest first; with an empty
    registry, the catalog's defaults for :data:`DEFAULT_MODELS`.
    """
    names = catalog.model_names()
    if tokens:
        specs = []
        for token in tokens:
            if token in names:
                specs.append(ModelSpec(token, token, catalog.defaults(token)))
            elif token.startswith("v") and token[1:].isdigit():
                entry = registry.get(token)
                specs.append(ModelSpec(f"{token} ({entry.name})", entry.name, dict(entry.params)))
            else:
                raise ValidationFailed(
                    f"models: {token!r} is neither a registered version (v1, v2, …) nor a model "
                    f"({', '.join(names)})"
                )
        return specs
    specs, seen = [], set()
    for entry in registry.list():
        if entry.status in ("building", "failed"):
            continue
        key = (entry.name, repr(sorted(entry.params.items())))
        if key in seen:
            continue
        seen.add(key)
        specs.append(ModelSpec(f"{entry.version} ({entry.name})", entry.name, dict(entry.params)))
    if not specs:
        specs = [ModelSpec(n, n, catalog.defaults(n)) for n in DEFAULT_MODELS if n in names]
    return specs


def evaluate_installation(
    engine: Engine,
    settings: Settings,
    registry: ModelRegistry,
    models: Sequence[str] | None,
    split: str,
    ks: Sequence[int],
    out: Path,
    progress: Progress | None = None,
) -> tuple[Comparison, Path, Path]:
    """Compare the configurations on the store's interactions and write the report into ``out``."""
    specs = resolve_specs(registry, models)
    if progress is not None:
        progress.stage("loading interactions from the store")
    data = load_training_data(engine, settings)
    comparison = compare(specs, data.interactions, data.items, split=split, ks=ks, progress=progress)
    html_path, json_path = write_report(comparison, out)
    return comparison, html_path, json_path
