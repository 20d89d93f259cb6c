"""Cold start: what to show people the model cannot rank yet.

The chain, tried in order for a person with no usable history (each answer's ``reason`` says
which step produced it):

1. **Segment-aware popularity** — ``"popular in segment drama_fans"``: the items most members
   of the person's most confident segment interacted with. Segments come from a
   :class:`SegmentSource` (the segment engine implements it; by default nobody is in any).
2. **Demographic popularity** — ``"popular among people like you (country=FR, gender=f)"``:
   the items most popular among trained users who share the person's traits (age band,
   gender, country, ... — :attr:`ColdStartConfig.traits`); the most specific group with at
   least ``min_group_size`` people wins.
3. **Global popularity** — ``"popular: ..."``: time-decayed popularity over everybody.

As soon as the person touches items the chain moves on (see
:mod:`attune.recommend.service`): item-to-item from those first events (``"because you
viewed <title>"``), then fold-in once they have enough events; items the model has never
seen (brand-new catalog items) are answered by content similarity over catalog attributes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Engine, select

from attune.errors import NotFound
from attune.storage.tables import profiles as profiles_table


@runtime_checkable
class SegmentSource(Protocol):
    """Segment memberships, as the segment engine computes them."""

    def segments_of(self, user_key: str) -> list[tuple[str, float]]:
        """``(segment name, confidence in 0..1)`` for the canonical subject ``user_key``."""
        ...

    def members(self, name: str) -> Iterable[str]:
        """Canonical subject keys of the members of segment ``name``."""
        ...


class NoSegments:
    """The default :class:`SegmentSource`: nobody is in any segment."""

    def segments_of(self, user_key: str) -> list[tuple[str, float]]:
        return []

    def members(self, name: str) -> Iterable[str]:
        return ()


class EngineSegments:
    """The segment engine (:class:`attune.segments.engine.SegmentEngine`) as a :class:`SegmentSource`.

    Both reads are in memory in the engine, so serving may call them on every request.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def segments_of(self, user_key: str) -> list[tuple[str, float]]:
        return [(m.name, float(m.confidence)) for m in self.engine.segments_of(user_key)]

    def members(self, name: str) -> Iterable[str]:
        try:
            return [key for key, _ in self.engine.members(name)]
        except NotFound:  # a segment deleted meanwhile
            return []


class StaticSegments:
    """A :class:`SegmentSource` from a fixed mapping (tests, demos, batch imports)."""

    def __init__(self, memberships: Mapping[str, Sequence[tuple[str, float]]]) -> None:
        self.memberships = {k: list(v) for k, v in memberships.items()}

    def segments_of(self, user_key: str) -> list[tuple[str, float]]:
        return list(self.memberships.get(user_key, ()))

    def members(self, name: str) -> Iterable[str]:
        return [k for k, segs in self.memberships.items() if any(s == name for s, _ in segs)]


@dataclass(frozen=True)
class ColdStartConfig:
    """Which traits define "people like you", and how many of them make a group."""

    traits: tuple[str, ...] = ("age", "gender", "country")
    min_group_size: int = 20
    #: How many items each group's popular list keeps.
    list_size: int = 500


def trait_value(name: str, value: Any) -> str | None:
    """The group label of a trait value: ages become ten-year bands, strings are lower-cased."""
    if value is None or isinstance(value, dict | list):
        return None
    if name in ("age", "age_years") and isinstance(value, int | float) and not isinstance(value, bool):
        low = int(value) // 10 * 10
        return f"{low}-{low + 9}"
    text = str(value).strip().lower()
    return text or None


@dataclass
class GroupPopularity:
    """Popular items among groups of the model's trained users (segments, demographic groups).

    Counts come from the model's training matrix (distinct users with a positive interaction),
    so they are computed in memory, once per group and model version.
    """

    user_index: Mapping[str, int]
    item_ids: np.ndarray
    matrix: sp.csr_matrix
    config: ColdStartConfig = field(default_factory=ColdStartConfig)
    _traits: dict[tuple[str, str], np.ndarray] | None = None
    _lists: dict[Any, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of_model(cls, model: Any, config: ColdStartConfig) -> GroupPopularity:
        """Groups over the trained users of a fitted :class:`~attune.recommend.models.base.Recommender`."""
        positive = sp.csr_matrix(model.user_items_, copy=True)
        positive.data = (positive.data > 0).astype(np.float32)
        positive.eliminate_zeros()
        return cls(model.user_index_, np.asarray(model.item_ids_), positive, config)

    def popular(self, rows: np.ndarray, cache_key: Any) -> tuple[list[str], np.ndarray]:
        """The most popular items among the users at ``rows`` (cached under ``cache_key``)."""
        cached = self._lists.get(cache_key)
        if cached is None:
            counts = np.asarray(self.matrix[rows].sum(axis=0)).ravel() if len(rows) else np.zeros(0)
            order = np.argsort(-counts, kind="stable")[: self.config.list_size]
            order = order[counts[order] > 0]
            cached = ([str(self.item_ids[j]) for j in order], counts[order] / max(1, len(rows)))
            if len(self._lists) > 10_000:
                self._lists.clear()
            self._lists[cache_key] = cached
        return cached

    # -- segments ------------------------------------------------------------------------
    def for_segment(self, name: str, members: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """Popular items among the trained members of segment ``name``."""
        key = ("segment", name)
        if key not in self._lists:
            rows = np.array(
                sorted({self.user_index[m] for m in members if m in self.user_index}), dtype=np.int64
            )
            if len(rows) < self.config.min_group_size:
                self._lists[key] = ([], np.zeros(0))
            return self.popular(rows, key)
        return self._lists[key]

    # -- demographics --------------------------------------------------------------------
    def load_traits(self, engine: Engine, vault: Any = None) -> None:
        """Read the traits of the trained users once (rows grouped by trait label).

        ``vault`` (a :class:`attune.privacy.traits_at_rest.TraitVault`) opens values sealed at rest.
        """
        groups: dict[tuple[str, str], list[int]] = {}
        wanted = self.config.traits
        with engine.connect() as conn:
            stored = {
                user_key: traits
                for user_key, traits in conn.execute(select(profiles_table.c.user_key, profiles_table.c.traits))
                if traits and user_key in self.user_index
            }
        if vault is not None:
            stored = vault.open_many(engine, stored)
        for user_key, traits in stored.items():
            row = self.user_index[user_key]
            for name in wanted:
                record = traits.get(name)
                label = trait_value(name, record.get("value") if isinstance(record, dict) else record)
                if label is not None:
                    groups.setdefault((name, label), []).append(row)
        self._traits = {k: np.array(sorted(v), dtype=np.int64) for k, v in groups.items()}

    def for_traits(
        self, engine: Engine, traits: Mapping[str, Any], vault: Any = None
    ) -> tuple[str, list[str], np.ndarray] | None:
        """(group description, items, scores) for the most specific large-enough group, or None."""
        labels = [
            (name, label)
            for name in self.config.traits
            if (label := trait_value(name, traits.get(name))) is not None
        ]
        if not labels:
            return None
        if self._traits is None:
            with self._lock:
                if self._traits is None:
                    self.load_traits(engine, vault)
        assert self._traits is not None
        # The full combination first, then fewer traits, each in configured order.
        candidates = [labels] + ([[pair] for pair in labels] if len(labels) > 1 else [])
        for combo in candidates:
            rows: np.ndarray | None = None
            for pair in combo:
                members = self._traits.get(pair, np.zeros(0, dtype=np.int64))
                rows = members if rows is None else np.intersect1d(rows, members, assume_unique=True)
            if rows is not None and len(rows) >= self.config.min_group_size:
                items, scores = self.popular(rows, ("traits", tuple(combo)))
                if items:
                    described = ", ".join(f"{n}={v}" for n, v in combo)
                    return described, items, scores
        return None
