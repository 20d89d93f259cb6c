"""Non-personalized baselines: (time-decayed) popularity and trending.

Ages are measured from the newest timestamp in the training data, not the wall clock, so a
historical data set ranks the same as live traffic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.base import ItemAttributes, Recommender

DAY = 86_400.0


class _Broadcast(Recommender):
    """Scores are one vector shared by every user; "similar items" are simply the top items."""

    personalized = False

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        return np.broadcast_to(self.scores_, (rows.shape[0], len(self.scores_))).copy()

    def _similar(self, index: int) -> np.ndarray:
        return self.scores_.astype(np.float64)


class Popularity(_Broadcast):
    """Item popularity: interaction counts (or summed weights), optionally time-decayed.

    ``weighted=False`` counts interactions with a positive weight; ``weighted=True`` sums the
    weights, so negative feedback subtracts. With ``half_life_days`` each interaction counts
    ``0.5 ** (age_days / half_life_days)``.
    """

    name = "popular"

    def __init__(self, weighted: bool = False, half_life_days: float | None = None) -> None:
        self.weighted = weighted
        self.half_life_days = half_life_days

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        if self.half_life_days is not None and not float(self.half_life_days) > 0:
            raise ValidationFailed(
                f"half_life_days: must be positive (or None for no decay), got {self.half_life_days}"
            )
        contribution = (
            data.weights.astype(np.float64) if self.weighted else (data.weights > 0).astype(np.float64)
        )
        if self.half_life_days:
            age_days = (data.timestamps.max() - data.timestamps) / DAY
            contribution = contribution * np.power(0.5, age_days / float(self.half_life_days))
        self.scores_ = np.bincount(data.items, weights=contribution, minlength=matrix.shape[1]).astype(
            np.float32
        )


class Trending(_Broadcast):
    """Items whose recent activity outgrows their own baseline.

    With ``r`` positive interactions in the last ``window_days`` and ``b`` in the
    ``baseline_days`` before that, the expected recent count is ``e = b × window / baseline``
    and the score is ``(r - e) / sqrt(e + smoothing)``: a surge on volume beats a steady
    best-seller, and one stray event on a dead item does not top the list.
    """

    name = "trending"

    def __init__(self, window_days: float = 7.0, baseline_days: float = 28.0, smoothing: float = 1.0) -> None:
        self.window_days = window_days
        self.baseline_days = baseline_days
        self.smoothing = smoothing

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        for field in ("window_days", "baseline_days", "smoothing"):
            if not float(getattr(self, field)) > 0:
                raise ValidationFailed(f"{field}: must be positive, got {getattr(self, field)}")
        newest = data.timestamps.max()
        window_start = newest - float(self.window_days) * DAY
        baseline_start = window_start - float(self.baseline_days) * DAY
        positive = data.weights > 0
        recent = positive & (data.timestamps > window_start)
        baseline = positive & (data.timestamps > baseline_start) & (data.timestamps <= window_start)
        n_items = matrix.shape[1]
        r = np.bincount(data.items[recent], minlength=n_items).astype(np.float64)
        b = np.bincount(data.items[baseline], minlength=n_items).astype(np.float64)
        expected = b * float(self.window_days) / float(self.baseline_days)
        self.recent_counts_ = r
        self.baseline_counts_ = b
        self.scores_ = ((r - expected) / np.sqrt(expected + float(self.smoothing))).astype(np.float32)
