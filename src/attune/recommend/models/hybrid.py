"""Weighted hybrid: a blend of standardized component scores, weights fitted on validation.

``fit`` carves an inner per-user temporal holdout from the data it is given, trains every
component on the inner training part, and searches the blend weights by coordinate ascent on
NDCG@10 over the validation users. The components are then refitted on all the data. The outer
test set is never involved: only what ``fit`` receives is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import ItemAttributes, Recommender
from attune.recommend.models.inner import InnerSplit, inner_split, mask_rows, ndcg_batch, zscore_rows

#: Components when none are given; ``content`` joins when item attributes are passed to fit.
DEFAULT_COMPONENTS: tuple[str, ...] = ("ease", "itemknn", "als", "popular")
#: Weight values tried for one component while the others stay fixed.
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Most dense score cells (users × items × components) the weight search holds in memory.
CELL_BUDGET = 40_000_000

#: Models that cannot be components of an ensemble.
FORBIDDEN = ("hybrid", "rerank")

ComponentSpec = Mapping[str, Mapping[str, Any]] | Sequence[str] | None


def resolve_components(spec: ComponentSpec, with_content: bool) -> dict[str, dict[str, Any]]:
    """Component name -> hyper-parameters, from a list of names or a mapping."""
    if spec is None:
        names = list(DEFAULT_COMPONENTS) + (["content"] if with_content else [])
        return {name: {} for name in names}
    if isinstance(spec, Mapping):
        return {str(name): dict(params or {}) for name, params in spec.items()}
    if isinstance(spec, str):
        return {part.strip(): {} for part in spec.split(",") if part.strip()}
    return {str(name): {} for name in spec}


def build_components(spec: dict[str, dict[str, Any]], forbidden: tuple[str, ...]) -> dict[str, Recommender]:
    """Fresh, unfitted component models from the catalog."""
    from attune.recommend.models import make_model  # the catalog imports this module

    if not spec:
        raise ValidationFailed("components: at least one component model is needed")
    bad = [name for name in spec if name in forbidden]
    if bad:
        raise ValidationFailed(f"components: {', '.join(bad)} cannot be a component of a hybrid")
    return {name: make_model(name, **params) for name, params in spec.items()}


def fit_components(
    models: dict[str, Recommender], data: Interactions, items: ItemAttributes | None
) -> tuple[dict[str, Recommender], list[str]]:
    """Fit every component on ``data``; components that cannot learn from it are dropped.

    Returns the fitted components and one "name: reason" line per dropped one.
    """
    fitted: dict[str, Recommender] = {}
    errors: list[str] = []
    for name, model in models.items():
        try:
            fitted[name] = model.fit(data, items=items)
        except ValidationFailed as exc:
            errors.append(f"{name}: {exc.message}")
    if not fitted:
        raise ValidationFailed("no component model could be trained: " + "; ".join(errors))
    return fitted, errors


def check_fraction(fraction: float) -> None:
    """Refuse a validation fraction outside (0, 1)."""
    if not 0 < float(fraction) < 1:
        raise ValidationFailed(f"validation_fraction: must be between 0 and 1, got {fraction}")


class _Ensemble(Recommender):
    """Shared plumbing: component spec, item-attribute use, inner split settings."""

    components: ComponentSpec
    validation_fraction: float
    max_validation_users: int

    @property
    def uses_item_attributes(self) -> bool:  # type: ignore[override]
        """True when a component (content) scores catalog items that have no interactions."""
        return "content" in resolve_components(self.components, with_content=True)

    def _component_spec(self, items: ItemAttributes | None) -> dict[str, dict[str, Any]]:
        return resolve_components(self.components, with_content=bool(items))


class WeightedHybrid(_Ensemble):
    """``score = Σ_m w_m · z(score_m)`` with ``z`` the per-user standardized scores.

    ``weights`` fixes the blend (no search); otherwise it is fitted on the inner validation split.
    Fitted weights are in ``weights_``; components with weight 0 are dropped. When the data is too
    small to carve a validation split the blend falls back to equal weights and says why in
    ``fallback_reason_``.
    """

    name = "hybrid"

    def __init__(
        self,
        components: ComponentSpec = None,
        weights: Mapping[str, float] | None = None,
        validation_fraction: float = 0.2,
        max_validation_users: int = 3000,
        rounds: int = 2,
        random_state: int = 0,
    ) -> None:
        self.components = components
        self.weights = weights
        self.validation_fraction = validation_fraction
        self.max_validation_users = max_validation_users
        self.rounds = rounds
        self.random_state = random_state

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        spec = self._component_spec(items)
        check_fraction(self.validation_fraction)
        build_components(spec, FORBIDDEN)  # unknown names or parameters fail before any work
        self.fallback_reason_: str | None = None
        self.validation_ndcg_: float | None = None
        self.component_errors_: list[str] = []
        if self.weights is not None:
            weights = {name: float(self.weights.get(name, 0.0)) for name in spec}
        else:
            # Every component's dense scores for the validation users are held at once: bound them.
            memory_cap = max(200, CELL_BUDGET // max(1, data.n_items * (len(spec) + 1)))
            max_users = min(int(self.max_validation_users), memory_cap)
            try:
                split = inner_split(data, float(self.validation_fraction), max_users, int(self.random_state))
            except ValidationFailed as exc:
                # Too little data to validate on: an equal blend is still a sensible answer.
                split = None
                self.fallback_reason_ = f"equal weights: {exc.message}"
            if split is None:
                weights = dict.fromkeys(spec, 1.0)
            else:
                weights, self.validation_ndcg_ = self._search_weights(spec, split, items)
        if not any(w > 0 for w in weights.values()):
            raise ValidationFailed("weights: at least one component needs a positive weight")
        kept = {name: spec[name] for name, w in weights.items() if w > 0}
        self.components_, errors = fit_components(build_components(kept, FORBIDDEN), data, items)
        self.component_errors_ += errors
        self.weights_ = {name: weights[name] for name in self.components_}

    def _search_weights(
        self, spec: dict[str, dict[str, Any]], split: InnerSplit, items: ItemAttributes | None
    ) -> tuple[dict[str, float], float]:
        models, errors = fit_components(build_components(spec, FORBIDDEN), split.train, items)
        self.component_errors_ += errors
        names = list(models)
        standardized = [zscore_rows(models[n].score_rows(split.rows, split.ranks)) for n in names]
        masked = mask_rows(np.zeros(split.rows.shape), split.rows)

        def quality(w: np.ndarray) -> float:
            blend = masked.copy()
            for weight, z in zip(w, standardized, strict=True):
                if weight:
                    blend += weight * z
            return ndcg_batch(blend, split.relevant, 10)

        alone = [quality(np.eye(len(names))[i]) for i in range(len(names))]
        best_w = np.eye(len(names))[int(np.argmax(alone))]
        best_q = max(alone)
        for _ in range(int(self.rounds)):
            improved = False
            for i in range(len(names)):
                for value in WEIGHT_GRID:
                    if value == best_w[i]:
                        continue
                    trial = best_w.copy()
                    trial[i] = value
                    if not trial.any():
                        continue
                    q = quality(trial)
                    if q > best_q + 1e-6:
                        best_q, best_w, improved = q, trial, True
            if not improved:
                break
        weights = {name: float(w) for name, w in zip(names, best_w, strict=True)}
        weights.update({name: 0.0 for name in spec if name not in models})
        return weights, best_q

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        blend = np.zeros((rows.shape[0], len(self.item_ids_)))
        for name, model in self.components_.items():
            blend += self.weights_[name] * zscore_rows(model.score_rows(rows, ranks))
        return blend

    def _similar(self, index: int) -> np.ndarray:
        total = np.zeros(len(self.item_ids_))
        used = 0
        for name, model in self.components_.items():
            if not model.personalized:
                continue
            try:
                sims = np.asarray(model._similar(index), dtype=np.float64)
            except ValidationFailed:
                continue
            finite = np.isfinite(sims)
            sims = np.where(finite, sims, sims[finite].min(initial=0.0) if finite.any() else 0.0)
            total += self.weights_[name] * zscore_rows(sims[None, :])[0]
            used += 1
        if not used:
            raise ValidationFailed("the hybrid model has no component with item similarity")
        return total
