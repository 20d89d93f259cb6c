"""Training data from the store: interaction records, cleaned and weighted, plus item attributes.

The profiles consumer keeps one ``interactions`` row per item event, attributed to the
person's canonical subject key (``u:<user_id>`` or ``a:<anonymous_id>``). Models are trained
on those keys, so a raw id is resolved to its key (identity stitching included) before a
model is asked about it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.settings import Settings
from attune.storage.tables import interactions, items

#: Rows fetched per round trip when streaming the interactions table.
_FETCH_ROWS = 50_000


@dataclass
class InteractionRecords:
    """Raw interaction rows as columns; ``values`` is NaN where a row has no value."""

    user_keys: np.ndarray
    item_ids: np.ndarray
    types: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.user_keys)

    @classmethod
    def from_columns(
        cls,
        user_keys: Any,
        item_ids: Any,
        timestamps: Any,
        types: Any = None,
        values: Any = None,
    ) -> InteractionRecords:
        """Columns from array-likes; missing ``types`` mean ``view``, missing ``values`` NaN."""
        users = np.asarray(user_keys).astype(str)
        n = len(users)
        return cls(
            user_keys=users,
            item_ids=np.asarray(item_ids).astype(str),
            types=np.full(n, "view", dtype=object) if types is None else np.asarray(types, dtype=object),
            timestamps=np.asarray(timestamps, dtype=np.float64),
            values=np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64),
        )

    def subset(self, mask: np.ndarray) -> InteractionRecords:
        """The rows where ``mask`` is true."""
        return InteractionRecords(
            self.user_keys[mask],
            self.item_ids[mask],
            self.types[mask],
            self.timestamps[mask],
            self.values[mask],
        )


@dataclass
class TrainingData:
    """Everything a training run reads: weighted interactions, item attributes, and what was cleaned."""

    interactions: Interactions
    items: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def time_range(self) -> tuple[float | None, float | None]:
        """Earliest and latest interaction time (epoch seconds)."""
        ts = self.interactions.timestamps
        return (float(ts.min()), float(ts.max())) if len(ts) else (None, None)


def read_records(
    engine: Engine, since: float | None = None, until: float | None = None
) -> InteractionRecords:
    """Interaction rows from the store, optionally limited to ``since <= ts < until``."""
    query = select(
        interactions.c.user_key,
        interactions.c.item_id,
        interactions.c.type,
        interactions.c.ts,
        interactions.c.value,
    ).order_by(interactions.c.event_offset)
    if since is not None:
        query = query.where(interactions.c.ts >= since)
    if until is not None:
        query = query.where(interactions.c.ts < until)
    users: list[str] = []
    item_ids: list[str] = []
    types: list[str] = []
    times: list[float] = []
    values: list[float] = []
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_FETCH_ROWS).execute(query)
        for user_key, item_id, kind, ts, value in result:
            users.append(user_key)
            item_ids.append(item_id)
            types.append(kind)
            times.append(ts)
            values.append(math.nan if value is None else value)
    return InteractionRecords(
        np.array(users, dtype=str),
        np.array(item_ids, dtype=str),
        np.array(types, dtype=object),
        np.array(times, dtype=np.float64),
        np.array(values, dtype=np.float64),
    )


def read_items(engine: Engine) -> dict[str, dict[str, Any]]:
    """Item attributes from the catalog, by item id."""
    with engine.connect() as conn:
        return {
            item_id: dict(attrs or {})
            for item_id, attrs in conn.execute(select(items.c.item_id, items.c.attributes))
        }


def clean(records: InteractionRecords) -> tuple[InteractionRecords, list[str]]:
    """Drop rows no model can use and say what was dropped.

    Rows without a finite time are dropped; a NaN or infinite value is treated as no value;
    exact repeats of a row (same person, item, type, time and value) count once, while the
    same item seen again at another time is a real repeat and stays.
    """
    notes: list[str] = []
    bad_time = ~np.isfinite(records.timestamps)
    if bad_time.any():
        notes.append(f"dropped {int(bad_time.sum()):,} interactions without a valid timestamp")
        records = records.subset(~bad_time)
    bad_value = ~np.isfinite(records.values) & ~np.isnan(records.values)
    if bad_value.any():
        notes.append(f"ignored {int(bad_value.sum()):,} infinite values")
        records.values[bad_value] = np.nan
    if len(records):
        values_key = np.where(np.isnan(records.values), -np.inf, records.values)
        keys = np.rec.fromarrays(
            [records.user_keys, records.item_ids, records.types.astype(str), records.timestamps, values_key]
        )
        _, first = np.unique(keys, return_index=True)
        if len(first) < len(records):
            keep = np.zeros(len(records), dtype=bool)
            keep[first] = True
            notes.append(f"dropped {len(records) - len(first):,} exact duplicate interactions")
            records = records.subset(keep)
    return records, notes


def weigh(records: InteractionRecords, settings: Settings) -> Interactions:
    """Weighted :class:`Interactions` from records, with the configured event-type weights."""
    from attune.recommend import signals

    return signals.to_interactions(records, settings.recommend)


def build_training_data(
    records: InteractionRecords,
    settings: Settings,
    item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrainingData:
    """Clean and weigh ``records``; refuse, with the reason, data nothing can be trained on."""
    records, notes = clean(records)
    check_trainable(records)
    data = weigh(records, settings)
    if len(data) == 0 or not (data.weights > 0).any():
        raise ValidationFailed(
            "no interaction carries a positive signal after weighting (only negative or zero-weight events?)"
        )
    check_trainable_interactions(data)
    attrs = {str(k): dict(v) for k, v in (item_attributes or {}).items()}
    return TrainingData(in_arrival_order(data, records), attrs, notes)


def in_arrival_order(data: Interactions, records: InteractionRecords) -> Interactions:
    """``data`` reordered as its interactions arrived (each at its latest record's position).

    Signals sum repeats into one row per (person, item) and return them sorted by id. The
    temporal splits break ties in time by row order, and many people do several things within
    the same second, so the order decides which of those are held out: arrival order (the
    event log's) is the meaningful one, not the order of the ids.
    """
    if len(data) == 0:
        return data
    user_pos = np.searchsorted(data.user_ids, records.user_keys)
    item_pos = np.searchsorted(data.item_ids, records.item_ids)
    user_pos = np.minimum(user_pos, len(data.user_ids) - 1)
    item_pos = np.minimum(item_pos, len(data.item_ids) - 1)
    known = (data.user_ids[user_pos] == records.user_keys) & (data.item_ids[item_pos] == records.item_ids)
    n_items = max(len(data.item_ids), 1)
    record_keys = user_pos[known].astype(np.int64) * n_items + item_pos[known]
    # For each (person, item) key, the position of its latest record.
    by_key = np.argsort(record_keys, kind="stable")
    sorted_keys = record_keys[by_key]
    last = np.r_[sorted_keys[1:] != sorted_keys[:-1], True]
    lookup_keys, lookup_pos = sorted_keys[last], np.flatnonzero(known)[by_key][last]
    wanted = data.users.astype(np.int64) * n_items + data.items
    found = np.minimum(np.searchsorted(lookup_keys, wanted), len(lookup_keys) - 1)
    positions = np.where(lookup_keys[found] == wanted, lookup_pos[found], -1)
    order = np.argsort(positions, kind="stable")
    return Interactions(
        data.users[order],
        data.items[order],
        data.timestamps[order],
        data.weights[order],
        data.user_ids,
        data.item_ids,
    )


def load_training_data(
    engine: Engine, settings: Settings, since: float | None = None, until: float | None = None
) -> TrainingData:
    """Interactions (all, or the time range given) and item attributes from the store."""
    return build_training_data(read_records(engine, since, until), settings, read_items(engine))


def check_trainable(records: InteractionRecords) -> None:
    """A clear error for data no model can learn from: empty, one person, one item."""
    if len(records) == 0:
        raise ValidationFailed(
            "there are no interactions to train on: import some with `attune import interactions PATH` "
            "(or widen the time range)"
        )
    _check_counts(len(np.unique(records.user_keys)), len(np.unique(records.item_ids)))


def check_trainable_interactions(data: Interactions) -> None:
    """The same check on weighted interactions (signals may drop rows)."""
    _check_counts(len(np.unique(data.users)), len(np.unique(data.items)))


def _check_counts(n_users: int, n_items: int) -> None:
    if n_users < 2:
        raise ValidationFailed(
            f"the interactions come from {n_users} person only; recommendations are learned from "
            "what different people share, so at least 2 are needed"
        )
    if n_items < 2:
        raise ValidationFailed(
            f"the interactions name {n_items} item only; there is nothing to rank with fewer than 2 items"
        )
