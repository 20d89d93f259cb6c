"""Time-decayed popularity from the daily item totals."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select

from attune.storage.tables import item_daily

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranking:
    """Items ordered by descending score."""

    item_ids: list[str]
    scores: np.ndarray
    reference_day: int
    #: Grows with every computation (cache keys of answers built from this ranking).
    generation: int = 0


class PopularityRanker:
    """Scores items by ``sum(weight * 0.5 ** (age_days / half_life))``.

    Ages are measured from the newest day in the data rather than the wall clock, so an
    imported historical data set ranks the same as live traffic. The ranking is computed
    in one vectorized pass and reused for ``cache_seconds``.
    """

    def __init__(self, engine: Engine, half_life_days: float, cache_seconds: float) -> None:
        self.engine = engine
        self.half_life_days = half_life_days
        self.cache_seconds = cache_seconds
        self._ranking: Ranking | None = None
        self._computed_at = 0.0
        self._lock = threading.Lock()
        self._generations = itertools.count(1)

    def ranking(self) -> Ranking:
        """The current ranking, recomputed when older than the cache time."""
        now = time.monotonic()
        if self._ranking is not None and now - self._computed_at < self.cache_seconds:
            return self._ranking
        with self._lock:
            if self._ranking is None or time.monotonic() - self._computed_at >= self.cache_seconds:
                self._ranking = self._compute()
                self._computed_at = time.monotonic()
        return self._ranking

    def peek(self) -> Ranking | None:
        """The cached ranking without database access (``None`` before the first computation).

        A ranking older than the cache time is still returned while a background thread
        computes the next one, so requests never queue behind the recomputation.
        """
        ranking = self._ranking
        stale = ranking is not None and time.monotonic() - self._computed_at >= self.cache_seconds
        if stale and self._lock.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, daemon=True, name="popularity").start()
        return ranking

    def _refresh_then_release(self) -> None:
        try:
            self._ranking = self._compute()
            self._computed_at = time.monotonic()
        except Exception:
            log.exception("could not recompute popularity")
        finally:
            self._lock.release()

    def invalidate(self) -> None:
        """Drop the cached ranking (after imports or replays): the next request recomputes it."""
        self._ranking = None
        self._computed_at = 0.0

    def _compute(self) -> Ranking:
        with self.engine.connect() as conn:
            rows = conn.execute(select(item_daily.c.item_id, item_daily.c.day, item_daily.c.weight)).all()
        if not rows:
            return Ranking([], np.zeros(0), 0, next(self._generations))
        ids = [r[0] for r in rows]
        days = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        weights = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
        reference = int(days.max())
        decayed = weights * np.power(0.5, (reference - days) / self.half_life_days)
        uniques, inverse = np.unique(np.array(ids, dtype=object), return_inverse=True)
        totals = np.bincount(inverse, weights=decayed)
        order = np.argsort(-totals, kind="stable")
        return Ranking([str(uniques[i]) for i in order], totals[order], reference, next(self._generations))

    def top(self, k: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The ``k`` most popular items not in ``exclude``."""
        ranking = self.ranking()
        out: list[tuple[str, float]] = []
        for item_id, score in zip(ranking.item_ids, ranking.scores, strict=True):
            if item_id in exclude:
                continue
            out.append((item_id, float(score)))
            if len(out) >= k:
                break
        return out
