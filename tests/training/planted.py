"""Planted data for training tests: a parity checkerboard with a known answer.

Even users interact with even items and odd users with odd items; each user has seen
``per_user`` of the ``n_items / 2`` items of their parity. Any sensible collaborative model
therefore ranks the unseen items of the user's own parity first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attune.settings import load_settings
from attune.training.loading import InteractionRecords, TrainingData, build_training_data

START = 1_700_000_000


def planted_rows(
    n_users: int = 40, n_items: int = 20, per_user: int = 8, seed: int = 0
) -> list[dict[str, Any]]:
    """``{"user_id", "item_id", "timestamp"}`` rows of the checkerboard, in time order per user."""
    rng = np.random.default_rng(seed)
    rows = []
    t = START
    for u in range(n_users):
        own = [i for i in range(n_items) if i % 2 == u % 2]
        for i in rng.permutation(own)[:per_user]:
            t += 60
            rows.append({"user_id": f"u{u}", "item_id": f"i{int(i):02d}", "timestamp": t})
    return rows


def parity(identifier: str) -> int:
    """The parity of ``u7`` or ``i07``."""
    return int(identifier[1:]) % 2


def planted_data(**kwargs: Any) -> TrainingData:
    """The checkerboard as training data (subject keys ``u:<id>``, as the store gives them)."""
    rows = planted_rows(**kwargs)
    records = InteractionRecords.from_columns(
        [f"u:{r['user_id']}" for r in rows], [r["item_id"] for r in rows], [r["timestamp"] for r in rows]
    )
    return build_training_data(records, load_settings())
