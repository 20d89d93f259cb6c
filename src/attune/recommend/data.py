"""Interaction data in the indexed form models train on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    """Parallel arrays of (user, item, timestamp, weight), with id vocabularies.

    ``users``/``items`` hold dense indices into ``user_ids``/``item_ids``. Weights default to 1
    (every interaction is an implicit positive).
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    weights: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        user_ids,  # noqa: ANN001 - any array-like of ids
        item_ids,  # noqa: ANN001
        timestamps,  # noqa: ANN001
        weights=None,  # noqa: ANN001
    ) -> Interactions:
        """Index raw ids (any hashable) into dense integer codes."""
        user_vocab, users = np.unique(np.asarray(user_ids).astype(str), return_inverse=True)
        item_vocab, items = np.unique(np.asarray(item_ids).astype(str), return_inverse=True)
        ts = np.asarray(timestamps, dtype=np.float64)
        w = np.ones(len(ts), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        return cls(users.astype(np.int32), items.astype(np.int32), ts, w, user_vocab, item_vocab)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        """Size of the user vocabulary."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary."""
        return len(self.item_ids)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The rows where ``mask`` is true, with the same vocabularies."""
        return Interactions(
            self.users[mask], self.items[mask], self.timestamps[mask], self.weights[mask], self.user_ids, self.item_ids
        )

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """The user × item matrix (duplicates summed, or 1 when ``binary``)."""
        data = np.ones(len(self), dtype=np.float32) if binary else self.weights
        mat = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32)
        mat.sum_duplicates()
        if binary:
            mat.data[:] = 1.0
        return mat
