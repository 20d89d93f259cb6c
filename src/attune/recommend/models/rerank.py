"""Learned re-ranker: LightGBM LambdaRank over the union of the components' candidates.

Each component proposes its top ``n_candidates`` unseen items per user. Every (user, candidate)
pair gets features — each component's standardized score and rank, the item's popularity and
recency, the user's activity, and the item's numeric/boolean catalog attributes — and a
LambdaRank model learns to order them. It is trained on an inner per-user temporal holdout of
the data handed to ``fit`` (the label is "the user interacted with it later"); the components
are then refitted on all the data for serving. Items that no component proposes are not ranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from lightgbm import LGBMRanker

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import ItemAttributes, Recommender
from attune.recommend.models.content import _field_kinds
from attune.recommend.models.hybrid import (
    FORBIDDEN,
    ComponentSpec,
    _Ensemble,
    build_components,
    fit_components,
)
from attune.recommend.models.inner import inner_split, mask_rows, zscore_rows

DAY = 86_400.0
#: Users scored per chunk when building features (bounds dense memory on large catalogs).
CHUNK = 256


class LearnedReranker(_Ensemble):
    """LambdaRank over candidates from the component models (see the module docstring)."""

    name = "rerank"

    def __init__(
        self,
        components: ComponentSpec = None,
        n_candidates: int = 50,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        use_item_attributes: bool = True,
        validation_fraction: float = 0.2,
        max_validation_users: int = 3000,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.components = components
        self.n_candidates = n_candidates
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.use_item_attributes = use_item_attributes
        self.validation_fraction = validation_fraction
        self.max_validation_users = max_validation_users
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        if int(self.n_candidates) < 1:
            raise ValidationFailed(f"n_candidates: must be at least 1, got {self.n_candidates}")
        spec = self._component_spec(items)
        build_components(spec, FORBIDDEN)  # unknown names or parameters fail before any work
        self.attribute_names_, self.item_attributes_ = self._attributes(data, items)
        split = inner_split(
            data, float(self.validation_fraction), int(self.max_validation_users), int(self.random_state)
        )
        inner, self.component_errors_ = fit_components(build_components(spec, FORBIDDEN), split.train, items)
        stats = _item_stats(split.train)
        features, groups, pairs = self._candidate_features(split.rows, inner, stats, split.ranks)
        relevant = split.relevant.tocsr()
        labels = np.asarray(relevant[pairs[:, 0], pairs[:, 1]]).ravel().astype(np.int32)
        features, labels, groups = _groups_with_positives(features, labels, groups)
        if len(groups) < 2 or len(labels) < 2:
            raise ValidationFailed(
                f"too little validation data to train the re-ranker: {len(groups)} user(s) had a later item among "
                "the candidates; use hybrid or a single model on data this small"
            )
        ranker = LGBMRanker(
            objective="lambdarank",
            n_estimators=int(self.n_estimators),
            learning_rate=float(self.learning_rate),
            num_leaves=int(self.num_leaves),
            min_child_samples=int(self.min_child_samples),
            random_state=int(self.random_state),
            n_jobs=int(self.num_threads) or None,
            verbose=-1,
        )
        ranker.fit(features, labels, group=groups)
        self.ranker_ = ranker
        self.inner_component_names_ = list(inner)
        # Serving features must line up with training ones: refit the same components on all data.
        full, errors = fit_components(build_components({n: spec[n] for n in inner}, FORBIDDEN), data, items)
        self.component_errors_ += errors
        if list(full) != list(inner):
            missing = sorted(set(inner) - set(full))
            raise ValidationFailed(
                f"components {missing} trained on the validation split but not on all the data"
            )
        self.components_ = full
        self.item_stats_ = _item_stats(data)

    def feature_names(self) -> list[str]:
        """Names of the ranker's input columns, in order."""
        self._check_fitted()
        names = []
        for component in self.components_:
            names += [f"{component}_score", f"{component}_rank"]
        return (
            names
            + ["item_log_popularity", "item_age_days", "user_log_activity"]
            + [f"attr_{a}" for a in self.attribute_names_]
        )

    def _attributes(self, data: Interactions, items: ItemAttributes | None) -> tuple[list[str], np.ndarray]:
        if not (self.use_item_attributes and items):
            return [], np.zeros((len(data.item_ids), 0))
        records = [items.get(str(i)) or {} for i in data.item_ids]
        names = _field_kinds(records, text_fields=())["numeric"]
        names += sorted({f for r in records for f, v in r.items() if isinstance(v, bool)})
        values = np.array(
            [[_number(r.get(name)) for name in names] for r in records], dtype=np.float64
        ).reshape(len(records), len(names))
        return names, values

    def _candidate_features(
        self,
        rows: sp.csr_matrix,
        models: dict[str, Recommender],
        stats: np.ndarray,
        recency: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows, group sizes and (row, item) pairs for every user's candidates."""
        feats, groups, pairs = [], [], []
        n = int(self.n_candidates)
        for start in range(0, rows.shape[0], CHUNK):
            chunk = rows[start : start + CHUNK]
            chunk_ranks = None if recency is None else recency[start : start + CHUNK]
            standardized = [
                mask_rows(zscore_rows(m.score_rows(chunk, chunk_ranks)), chunk) for m in models.values()
            ]
            n_items = standardized[0].shape[1]
            take = min(n, n_items)
            ranks = []
            candidate = np.zeros(standardized[0].shape, dtype=bool)
            for z in standardized:
                top = np.argpartition(-z, take - 1, axis=1)[:, :take]
                order = np.argsort(-np.take_along_axis(z, top, axis=1), axis=1, kind="stable")
                top = np.take_along_axis(top, order, axis=1)
                rank = np.full(z.shape, float(take), dtype=np.float32)
                np.put_along_axis(rank, top, np.arange(take, dtype=np.float32)[None, :], axis=1)
                ranks.append(rank)
                finite_top = np.isfinite(np.take_along_axis(z, top, axis=1))
                np.put_along_axis(
                    candidate, top, finite_top | np.take_along_axis(candidate, top, axis=1), axis=1
                )
            r, c = np.nonzero(candidate)
            activity = np.log1p(np.diff(chunk.indptr))[r]
            columns = []
            for z, rank in zip(standardized, ranks, strict=True):
                columns += [z[r, c], rank[r, c]]
            columns += [stats[c, 0], stats[c, 1], activity]
            block = np.column_stack(columns + [self.item_attributes_[c]]) if len(r) else np.zeros((0, 0))
            feats.append(block)
            groups.append(np.bincount(r, minlength=chunk.shape[0]))
            pairs.append(np.column_stack([r + start, c]))
        return np.vstack(feats), np.concatenate(groups), np.vstack(pairs)

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        scores = np.full((rows.shape[0], len(self.item_ids_)), -np.inf)
        features, _, pairs = self._candidate_features(rows, self.components_, self.item_stats_, ranks)
        if len(pairs):
            scores[pairs[:, 0], pairs[:, 1]] = self.ranker_.predict(features)
        return scores

    def _similar(self, index: int) -> np.ndarray:
        for model in self.components_.values():
            if model.personalized:
                try:
                    return model._similar(index)
                except ValidationFailed:
                    continue
        raise ValidationFailed("the rerank model has no component with item similarity")


def _item_stats(data: Interactions) -> np.ndarray:
    """Per item: log(1 + positive interactions) and days since its newest interaction."""
    positive = data.weights > 0
    counts = np.bincount(data.items[positive], minlength=data.n_items).astype(np.float64)
    newest = np.full(data.n_items, -np.inf)
    np.maximum.at(newest, data.items, data.timestamps)
    age = np.where(np.isfinite(newest), (data.timestamps.max() - newest) / DAY, np.nan)
    return np.column_stack([np.log1p(counts), age])


def _groups_with_positives(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop users with no relevant candidate: LambdaRank learns nothing from them."""
    owner = np.repeat(np.arange(len(groups)), groups)
    has_positive = np.bincount(owner, weights=labels, minlength=len(groups)) > 0
    keep = has_positive[owner]
    return features[keep], labels[keep], groups[has_positive & (groups > 0)]


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan
