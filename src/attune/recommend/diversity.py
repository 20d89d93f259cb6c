"""Maximal marginal relevance (Carbonell & Goldstein 1998): trade relevance for variety."""

from __future__ import annotations

import numpy as np


def mmr(relevance: np.ndarray, similarity: np.ndarray, k: int, diversity: float) -> list[int]:
    """Positions of ``k`` candidates picked greedily by MMR, in pick order.

    ``relevance`` holds the candidates' scores (any scale: they are min-max normalized);
    ``similarity`` is the candidates' item-item similarity matrix. Each step picks
    ``argmax (1 - diversity) * relevance - diversity * max similarity to the picked``;
    ``diversity = 0`` keeps the relevance order, ``1`` only avoids repeats.
    """
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    sim = np.asarray(similarity, dtype=np.float64)
    picked = [int(np.argmax(relevance))]  # the raw scores: normalizing may round near-ties together
    closest = sim[picked[0]].copy()
    available = np.ones(n, dtype=bool)
    available[picked[0]] = False
    while len(picked) < k:
        gain = (1.0 - diversity) * rel - diversity * closest
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        np.maximum(closest, sim[best], out=closest)
    return picked
