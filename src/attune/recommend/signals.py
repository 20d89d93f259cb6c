"""From raw interaction records to weighted :class:`Interactions` models train on.

Each record is (user, item, event type, timestamp, value). Its weight is:

- the weight of its event type (``purchase`` > ``add_to_cart`` > ``click`` > ``view``); types
  not listed get ``default_weight`` (``None`` drops them);
- for ratings, scaled by the value: ``w_rating × (value - rating_neutral) / rating_scale``, so on
  a 1-5 scale with the defaults 5 stars is ``+1 × w_rating`` and 1 star ``-0.6 × w_rating``;
- negative for negative feedback (``dislike``, ``skip``, ``remove_from_cart``);
- times ``0.5 ** (age / half_life_days)`` when a half-life is set, the age measured from the
  newest timestamp in the data (not the wall clock, so a historical import weighs the same as
  live traffic).

Duplicate (user, item) pairs are summed into one interaction carrying the newest timestamp.

How each model family uses negative weights (see :mod:`attune.recommend.models.base`):
item-based models (item kNN, EASE) and the content model score with the signed row, so
neighbours of a disliked item are pushed down; ALS and BPR train and fold in on positive
entries only, so a disliked item never counts as liked; popularity counts positives (or
subtracts negatives when ``weighted``). Every model never recommends an item whose net weight
for that user is negative.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions

DAY = 86_400.0

#: Default weight per canonical event type; negative values are negative feedback.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "purchase": 8.0,
    "add_to_cart": 4.0,
    "like": 3.0,
    "rating": 3.0,
    "share": 2.0,
    "click": 2.0,
    "view": 1.0,
    "page_view": 0.5,
    "screen_view": 0.5,
    "skip": -1.0,
    "remove_from_cart": -2.0,
    "dislike": -4.0,
}


@dataclass(frozen=True)
class SignalConfig:
    """How raw events become interaction weights (see the module docstring)."""

    #: Weight per event type, merged over :data:`DEFAULT_EVENT_WEIGHTS` (0 drops the type).
    event_weights: Mapping[str, float] = field(default_factory=dict)
    #: Weight of event types not listed; ``None`` drops them.
    default_weight: float | None = 1.0
    #: The event type whose value is a rating.
    rating_type: str = "rating"
    #: Rating value that counts as neither liked nor disliked.
    rating_neutral: float = 2.5
    #: Rating distance from neutral that counts as one full ``rating`` weight.
    rating_scale: float = 2.5
    #: Half-life of the time decay in days; ``None`` keeps old interactions at full weight.
    half_life_days: float | None = None
    #: Sum duplicate (user, item) pairs into one interaction (the newest timestamp is kept).
    aggregate: bool = True

    def weights(self) -> dict[str, float]:
        """The effective event-type weights."""
        return {**DEFAULT_EVENT_WEIGHTS, **{str(k): float(v) for k, v in self.event_weights.items()}}

    @classmethod
    def from_settings(cls, settings: Any) -> SignalConfig:
        """A config from an object with some of these field names (e.g. ``Settings.recommend``)."""
        if settings is None:
            return cls()
        if isinstance(settings, SignalConfig):
            return settings
        found: dict[str, Any] = {}
        for name in (
            "event_weights",
            "default_weight",
            "rating_type",
            "rating_neutral",
            "rating_scale",
            "aggregate",
        ):
            if getattr(settings, name, None) is not None:
                found[name] = getattr(settings, name)
        half_life = getattr(settings, "interaction_half_life_days", None)
        if half_life is not None:
            found["half_life_days"] = half_life
        return cls(**found)


def build_interactions(
    user_ids: Any,
    item_ids: Any,
    event_types: Any,
    timestamps: Any,
    values: Any = None,
    config: SignalConfig | None = None,
) -> Interactions:
    """Weighted interactions from parallel columns.

    ``values`` may hold NaN for "no value" (columns have no ``None``); an infinite value, or a
    timestamp that is NaN or infinite, is refused with the row it is on.
    """
    config = config or SignalConfig()
    users = np.asarray(user_ids).astype(str)
    items = np.asarray(item_ids).astype(str)
    types = np.asarray(event_types, dtype=object)
    n = len(users)
    if not (len(items) == len(types) == n):
        raise ValidationFailed(
            f"columns differ in length: {n} users, {len(items)} items, {len(types)} event types"
        )
    try:
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        vals = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"timestamps and values must be numbers: {exc}") from None
    if len(ts) != n or len(vals) != n:
        raise ValidationFailed(
            f"columns differ in length: {n} rows, {len(ts)} timestamps, {len(vals)} values"
        )
    _refuse(~np.isfinite(ts), "timestamp", "is NaN or infinite")
    _refuse(np.isinf(vals), "value", "is infinite")
    _check_config(config)

    type_weights = config.weights()
    default = np.nan if config.default_weight is None else float(config.default_weight)
    labels = types.astype(str)
    uniques, inverse = np.unique(labels, return_inverse=True)
    weights = np.array([type_weights.get(t, default) for t in uniques], dtype=np.float64)[inverse.reshape(-1)]
    is_rating = labels == config.rating_type
    rated = is_rating & ~np.isnan(vals)
    weights[rated] *= (vals[rated] - config.rating_neutral) / config.rating_scale
    if config.half_life_days and n:
        weights *= np.power(0.5, (ts.max() - ts) / (float(config.half_life_days) * DAY))
    keep = ~np.isnan(weights) & (weights != 0) if n else np.zeros(0, dtype=bool)
    # A rating exactly at neutral is still an interaction the user had: keep it (as "seen").
    keep |= rated & (vals == config.rating_neutral)
    data = Interactions.from_arrays(users[keep], items[keep], ts[keep], weights[keep])
    return aggregate(data) if config.aggregate else data


def aggregate(data: Interactions) -> Interactions:
    """One interaction per (user, item): weights summed, the newest timestamp kept."""
    if len(data) == 0:
        return data
    keys = data.users.astype(np.int64) * max(data.n_items, 1) + data.items
    uniques, inverse = np.unique(keys, return_inverse=True)
    weights = np.bincount(inverse, weights=data.weights.astype(np.float64), minlength=len(uniques))
    newest = np.full(len(uniques), -np.inf)
    np.maximum.at(newest, inverse, data.timestamps)
    n_items = max(data.n_items, 1)
    return Interactions(
        (uniques // n_items).astype(np.int32),
        (uniques % n_items).astype(np.int32),
        newest,
        weights.astype(np.float32),
        data.user_ids,
        data.item_ids,
    )


def from_records(records: Iterable[Mapping[str, Any]], config: SignalConfig | None = None) -> Interactions:
    """Weighted interactions from dicts with ``user_id``, ``item_id``, ``timestamp`` and
    optionally ``type`` (default ``view``) and ``value``.

    A missing field, a NaN or infinite value or timestamp is refused with the record's index.
    """
    users, items, types, times, values = [], [], [], [], []
    errors: list[str] = []
    for index, record in enumerate(records):
        problems = []
        for name in ("user_id", "item_id"):
            if record.get(name) in (None, ""):
                problems.append(f"{name}: is required")
        ts = _number(record.get("timestamp"))
        if ts is None or not math.isfinite(ts):
            problems.append("timestamp: must be a finite number (epoch seconds)")
        raw_value = record.get("value")
        value = _number(raw_value) if raw_value is not None else math.nan
        if raw_value is not None and (value is None or not math.isfinite(value)):
            problems.append("value: must be a finite number")
        if problems:
            errors += [f"record {index}: {p}" for p in problems]
            continue
        users.append(str(record["user_id"]))
        items.append(str(record["item_id"]))
        types.append(str(record.get("type") or "view"))
        times.append(ts)
        values.append(value)
    if errors:
        shown = "; ".join(errors[:5]) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        raise ValidationFailed(f"{len(errors)} problem(s) in the interaction records: {shown}", errors=errors)
    return build_interactions(users, items, types, times, values, config)


def to_interactions(records: Any, settings: Any = None) -> Interactions:
    """Weighted interactions from column records (``user_keys``, ``item_ids``, ``types``,
    ``timestamps``, ``values`` — e.g. the trainer's ``InteractionRecords``) and settings-like
    configuration (see :meth:`SignalConfig.from_settings`)."""
    return build_interactions(
        records.user_keys,
        records.item_ids,
        records.types,
        records.timestamps,
        records.values,
        SignalConfig.from_settings(settings),
    )


def _refuse(bad: np.ndarray, name: str, reason: str) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)
        listed = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise ValidationFailed(f"{name}: {len(rows)} row(s) where it {reason} (rows {listed})")


def _check_config(config: SignalConfig) -> None:
    for name, weight in config.weights().items():
        if not math.isfinite(weight):
            raise ValidationFailed(f"event_weights.{name}: must be a finite number, got {weight}")
    if not (math.isfinite(config.rating_scale) and config.rating_scale > 0):
        raise ValidationFailed(f"rating_scale: must be a positive number, got {config.rating_scale}")
    if not math.isfinite(config.rating_neutral):
        raise ValidationFailed(f"rating_neutral: must be a finite number, got {config.rating_neutral}")
    if config.half_life_days is not None and not (
        config.half_life_days > 0 and math.isfinite(config.half_life_days)
    ):
        raise ValidationFailed(
            f"half_life_days: must be a positive number of days, got {config.half_life_days}"
        )
    if config.default_weight is not None and not math.isfinite(config.default_weight):
        raise ValidationFailed(
            f"default_weight: must be a finite number or None, got {config.default_weight}"
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
