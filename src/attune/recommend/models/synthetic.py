"""Synthetic interaction data with known answers, for tests and demos (implicit's checkerboard)."""

from __future__ import annotations

import numpy as np

from attune.recommend.data import Interactions


def checkerboard(n_users: int = 40, n_items: int = 20, n_probes: int = 2, seed: int = 0) -> Interactions:
    """Even users interact with even items, odd users with odd items.

    The first ``n_probes`` users ("u00", "u01", ...) miss the last item of their parity
    (``i18`` for even users, ``i19`` for odd ones with the defaults): every personalized
    model should recommend exactly that item first. Timestamps are a seeded shuffle, so a
    temporal split holds out different items for different users.
    """
    users, items = [], []
    for u in range(n_users):
        liked = [i for i in range(n_items) if i % 2 == u % 2]
        for i in liked[:-1] if u < n_probes else liked:
            users.append(f"u{u:02d}")
            items.append(f"i{i:02d}")
    times = np.random.default_rng(seed).permutation(len(users)).astype(np.float64)
    return Interactions.from_arrays(users, items, times)


def held_out_item(user: int, n_items: int = 20) -> str:
    """The item a checkerboard probe user is missing."""
    last = n_items - 1 if (n_items - 1) % 2 == user % 2 else n_items - 2
    return f"i{last:02d}"


def clustered_catalog(
    n_users: int = 300, n_items: int = 600, n_clusters: int = 6, per_user: int = 12, seed: int = 0
) -> Interactions:
    """Users and items in ``n_clusters`` taste groups; each user interacts with items of their group.

    User ``u`` belongs to group ``u % n_clusters``, item ``i`` to ``i % n_clusters``.
    """
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        group = u % n_clusters
        pool = np.arange(group, n_items, n_clusters)
        for i in rng.choice(pool, size=min(per_user, len(pool)), replace=False):
            users.append(f"u{u:04d}")
            items.append(f"i{i:05d}")
    return Interactions.from_arrays(users, items, np.arange(len(users), dtype=np.float64))
