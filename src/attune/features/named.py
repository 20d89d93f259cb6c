"""Named features computed from window primitives, shared by the online and offline paths.

Every function takes numpy arrays (offline: one element per person) or scalars (online) and
does the same float arithmetic in the same order, so both paths give identical values.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from attune.features.definitions import DAY_MICROS, FeatureDefinitions

HOUR_MICROS = 3_600_000_000
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: 1970-01-01 was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def share_rate(shares: np.ndarray | float, views: np.ndarray | float) -> np.ndarray:
    """Shares per view in the window (shares / max(views, 1)); 0 without activity."""
    return np.asarray(shares, dtype=np.float64) / np.maximum(np.asarray(views, dtype=np.float64), 1.0)


def recency_days(now_us: int, last_us: np.ndarray | float) -> np.ndarray:
    """Days since the latest behavioural event at or before now (NaN when there is none)."""
    return (np.float64(now_us) - np.asarray(last_us, dtype=np.float64)) / np.float64(DAY_MICROS)


def engagement_score(components: dict[str, np.ndarray | float], defs: FeatureDefinitions) -> np.ndarray:
    """Weighted mean of ``min(value / cap, 1)`` over the configured features, in [0, 1].

    A missing component (NaN) counts as 0: no activity is no engagement.
    """
    total_weight = sum(defs.engagement_weights.values())
    if all(isinstance(v, int | float) for v in components.values()):
        return np.float64(_engagement_scalar(components, defs, total_weight))  # type: ignore[arg-type]
    score: np.ndarray | float = 0.0
    for name in sorted(defs.engagement_weights):
        weight = defs.engagement_weights[name]
        if weight == 0:
            continue
        value = np.nan_to_num(np.asarray(components[name], dtype=np.float64), nan=0.0)
        normalized = np.clip(value / defs.engagement_caps[name], 0.0, 1.0)
        score = score + (weight / total_weight) * normalized
    return np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)


def _engagement_scalar(components: dict[str, float], defs: FeatureDefinitions, total_weight: float) -> float:
    """The same arithmetic as the array path, in the same order, for one person (much faster)."""
    score = 0.0
    for name in sorted(defs.engagement_weights):
        weight = defs.engagement_weights[name]
        if weight == 0:
            continue
        value = float(components[name])
        if value != value:  # NaN counts as 0
            value = 0.0
        normalized = min(max(value / defs.engagement_caps[name], 0.0), 1.0)
        score = score + (weight / total_weight) * normalized
    return min(max(score, 0.0), 1.0)


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo | None:
    """The time zone called ``name``; ``None`` (UTC) when absent or not a valid IANA name."""
    if not name or not isinstance(name, str) or name.upper() in ("UTC", "Z", "ETC/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # unknown or malformed names fall back to UTC
        return None


def local_clock(ts_us: int, tz_name: str | None) -> tuple[int, int]:
    """(hour 0-23, weekday 0=Monday) of the instant ``ts_us`` in ``tz_name`` (UTC when unusable)."""
    tz = zone(tz_name)
    if tz is None:
        return (ts_us // HOUR_MICROS) % 24, (ts_us // DAY_MICROS + _EPOCH_WEEKDAY) % 7
    local = (_EPOCH + dt.timedelta(microseconds=ts_us)).astimezone(tz)
    return local.hour, local.weekday()


def local_clock_many(ts_us: np.ndarray, tz_names: list[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`local_clock` for many instants: UTC rows vectorized, zoned rows one by one."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    hours = (ts_us // HOUR_MICROS) % 24
    weekdays = (ts_us // DAY_MICROS + _EPOCH_WEEKDAY) % 7
    if tz_names is not None:
        for i, name in enumerate(tz_names):
            if name is not None and zone(name) is not None:
                hours[i], weekdays[i] = local_clock(int(ts_us[i]), name)
    return hours, weekdays


def daypart(hour: int) -> str:
    """night (0-5), morning (6-11), afternoon (12-17) or evening (18-23)."""
    return ("night", "morning", "afternoon", "evening")[hour // 6]
