"""Several model configurations fitted and scored on the same split (``attune evaluate``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from attune.errors import ValidationFailed
from attune.evaluation.beyond import beyond_accuracy, item_popularity, popularity_percentiles
from attune.evaluation.offline import DEFAULT_KS, evaluate_model
from attune.evaluation.split import global_time_split, temporal_holdout, user_kfold
from attune.recommend.data import Interactions

#: Split name -> description, as ``attune evaluate --split`` accepts them.
SPLITS: dict[str, str] = {
    "holdout": "per-user temporal holdout: each user's latest 20% (at least one) is test (DESIGN.md)",
    "global": "global time split: everything after the 80% time quantile is test",
    "kfold": "user-level 5-fold: each fold's users are tested on their latest 20%, the others train in full",
}
#: Bins of the recommended items' popularity-percentile histogram.
POPULARITY_BINS = 10


@dataclass(frozen=True)
class ModelSpec:
    """One configuration to evaluate: a label for the report, a catalog name, hyper-parameters."""

    label: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelResult:
    """The figures of one configuration (means over test users; pooled over folds)."""

    label: str
    name: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    beyond: dict[str, dict[str, float | None]] = field(default_factory=dict)
    popularity_histogram: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    error: str | None = None


@dataclass
class Comparison:
    """Every configuration's figures on one split."""

    split: str
    split_description: str
    ks: tuple[int, ...]
    n_interactions: int
    n_users: int
    n_items: int
    folds: list[dict[str, int]]
    results: list[ModelResult]
    test_popularity_percentile: float | None
    popularity_k: int = 10
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``report.json`` holds)."""
        out = asdict(self)
        out["ks"] = list(self.ks)
        return out


def split_data(data: Interactions, split: str, folds: int = 5) -> list[tuple[Interactions, Interactions]]:
    """The (train, test) pairs of ``split``."""
    if split == "holdout":
        pairs = [temporal_holdout(data)]
    elif split == "global":
        pairs = [global_time_split(data)]
    elif split == "kfold":
        if len(np.unique(data.users)) < folds:
            raise ValidationFailed(f"split: kfold needs at least {folds} users")
        pairs = user_kfold(data, k=folds)
    else:
        raise ValidationFailed(f"split: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    for train, test in pairs:
        if len(train) == 0 or len(test) == 0:
            raise ValidationFailed(
                f"split: the {split} split leaves an empty training or test part on this data; try another split"
            )
    return pairs


def _weighted(values: Sequence[float | None], weights: Sequence[int]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None and w > 0]
    if not pairs:
        return None
    return float(sum(v * w for v, w in pairs) / sum(w for _, w in pairs))


def compare(
    specs: Sequence[ModelSpec],
    data: Interactions,
    items: Mapping[str, Mapping[str, Any]] | None = None,
    split: str = "holdout",
    ks: Sequence[int] = DEFAULT_KS,
    progress: Any = None,
) -> Comparison:
    """Fit each spec on every training part of ``split`` and score it on the test part."""
    from attune.training import catalog  # evaluation is used by training; import lazily

    ks = tuple(sorted(set(ks)))
    popularity_k = 10 if 10 in ks else ks[-1]
    pairs = split_data(data, split)
    test_percentiles = []
    for train, test in pairs:
        percentiles = popularity_percentiles(item_popularity(train))
        test_percentiles.append(float(percentiles[test.items].mean()))
    results: list[ModelResult] = []
    for spec in specs:
        result = ModelResult(spec.label, spec.name, dict(spec.params))
        if progress is not None:
            progress.stage(f"evaluating {spec.label}")
        per_fold: list[tuple[int, dict[str, float], dict[int, dict[str, float | None]], np.ndarray]] = []
        started = time.perf_counter()
        try:
            for train, test in pairs:
                model = catalog.fit(catalog.build(spec.name, spec.params), train, items)
                evaluation = evaluate_model(model, test, ks=ks)
                beyond = {k: beyond_accuracy([row[:k] for row in evaluation.lists], train) for k in ks}
                per_fold.append(
                    (
                        evaluation.n_users,
                        evaluation.metrics,
                        beyond,
                        _histogram(evaluation.lists, train, popularity_k),
                    )
                )
        except Exception as exc:  # noqa: BLE001 - one model failing must not lose the others' figures
            result.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            results.append(result)
            continue
        result.fit_seconds = time.perf_counter() - started
        weights = [n for n, _, _, _ in per_fold]
        result.metrics = {
            key: _weighted([m[key] for _, m, _, _ in per_fold], weights) or 0.0 for key in per_fold[0][1]
        }
        result.beyond = {
            str(k): {
                key: _weighted([b[k][key] for _, _, b, _ in per_fold], weights) for key in per_fold[0][2][k]
            }
            for k in ks
        }
        hist = sum(h for _, _, _, h in per_fold)
        result.popularity_histogram = (hist / hist.sum()).tolist() if hist.sum() else []
        results.append(result)
    return Comparison(
        split=split,
        split_description=SPLITS[split],
        ks=ks,
        n_interactions=len(data),
        n_users=len(np.unique(data.users)),
        n_items=len(np.unique(data.items)),
        folds=[{"train": len(tr), "test": len(te)} for tr, te in pairs],
        results=results,
        test_popularity_percentile=_weighted(test_percentiles, [len(te) for _, te in pairs]),
        popularity_k=popularity_k,
    )


def _histogram(lists: Sequence[Sequence[str]], train: Interactions, k: int) -> np.ndarray:
    """Counts of recommended items per popularity-percentile bin (0 = least popular tenth)."""
    index = {str(item): i for i, item in enumerate(train.item_ids)}
    percentiles = popularity_percentiles(item_popularity(train))
    picked = [percentiles[index[i]] for row in lists for i in row[:k] if i in index]
    counts, _ = np.histogram(picked, bins=POPULARITY_BINS, range=(0.0, 1.0))
    return counts.astype(np.float64)
