"""Scoring a fitted model on a test split under the DESIGN.md protocol.

Every test interaction is an implicit positive; items the user has in the training part are
excluded from the ranking (the model's ``exclude_seen``); each metric is averaged over the
users who have test interactions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from attune.evaluation.metrics import (
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)
from attune.recommend.data import Interactions
from attune.recommend.models.base import Recommender

#: The K values reported unless told otherwise.
DEFAULT_KS: tuple[int, ...] = (5, 10, 20)

#: Metric name -> function(recommended, relevant, k).
RANKING_METRICS: dict[str, Callable[[Sequence[str], set[str], int], float]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "mrr": reciprocal_rank_at_k,
    "hit_rate": hit_rate_at_k,
}

#: Score cells (users × items) per batch: bounds the dense score block (160 MB of float64).
_BATCH_CELLS = 20_000_000


@dataclass
class Evaluation:
    """Mean metrics (``"ndcg@10"`` -> value) and the ranked lists they were computed from."""

    metrics: dict[str, float]
    n_users: int
    ks: tuple[int, ...]
    user_ids: list[str]
    lists: list[list[str]]

    def get(self, metric: str, k: int) -> float:
        """One mean metric, e.g. ``get("ndcg", 10)``."""
        return self.metrics[f"{metric}@{k}"]


def parse_ks(text: str | Sequence[int]) -> tuple[int, ...]:
    """K values from ``"5,10,20"`` (or a sequence), sorted and unique; each a positive integer."""
    from attune.errors import ValidationFailed

    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    ks: set[int] = set()
    for part in parts:
        if not part:
            continue
        if not part.isdigit() or int(part) < 1 or int(part) > 1000:
            raise ValidationFailed(f"k: {part!r} is not a whole number between 1 and 1000")
        ks.add(int(part))
    if not ks:
        raise ValidationFailed("k: give at least one cut-off, for example 5,10,20")
    return tuple(sorted(ks))


def relevant_items(test: Interactions) -> dict[str, set[str]]:
    """Each test user's set of test items (ids)."""
    relevant: dict[str, set[str]] = {}
    for user, item in zip(test.user_ids[test.users], test.item_ids[test.items], strict=True):
        relevant.setdefault(str(user), set()).add(str(item))
    return relevant


def rank(model: Recommender, user_ids: Sequence[str], k: int) -> list[list[str]]:
    """Top-``k`` lists (seen items excluded) for ``user_ids``, in batches."""
    lists: list[list[str]] = []
    batch = max(16, min(1024, _BATCH_CELLS // max(len(model.item_ids_), 1)))
    for start in range(0, len(user_ids), batch):
        ids, _ = model.recommend_batch(list(user_ids[start : start + batch]), k=k)
        lists.extend(ids)
    return lists


def score_lists(
    lists: Sequence[Sequence[str]], relevant: Sequence[set[str]], ks: Sequence[int]
) -> dict[str, float]:
    """Mean of every ranking metric at every K over parallel ``lists`` and ``relevant`` sets."""
    out: dict[str, float] = {}
    for k in ks:
        for name, metric in RANKING_METRICS.items():
            values = [metric(ranked, rel, k) for ranked, rel in zip(lists, relevant, strict=True)]
            out[f"{name}@{k}"] = float(np.mean(values)) if values else 0.0
    return out


def evaluate_model(
    model: Recommender,
    test: Interactions,
    ks: Sequence[int] = DEFAULT_KS,
    max_users: int | None = None,
    seed: int = 0,
) -> Evaluation:
    """Mean ranking metrics of a fitted ``model`` over the users of ``test``.

    ``max_users`` evaluates a fixed random sample of users instead (used while tuning on
    large data sets; the final figures use every user).
    """
    relevant = relevant_items(test)
    users = sorted(relevant)
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(np.array(users, dtype=object), size=max_users, replace=False).tolist())
    ks = tuple(sorted(set(ks)))
    lists = rank(model, users, max(ks)) if users else []
    metrics = score_lists(lists, [relevant[u] for u in users], ks)
    return Evaluation(metrics=metrics, n_users=len(users), ks=ks, user_ids=users, lists=lists)
