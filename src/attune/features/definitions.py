"""Feature definitions: which windows, which activity measures, how the engagement score is built.

One :class:`FeatureDefinitions` is shared by the online store and the offline computation, so
both answer every :class:`~attune.features.refs.FeatureRef` with the same meaning.

Window semantics (online and offline alike). Event times are kept as integer microseconds
(``round(timestamp * 1e6)``, exactly as the lake stores them). The value of a reference at
instant ``now`` with window ``w`` covers the events whose time ``t`` satisfies
``now - w < t <= now``: an event exactly ``w`` old has just left the window, and an event
dated after ``now`` (clock skew, future-dated imports) does not count until its time comes.
Without a window (all time) every event with ``t <= now`` counts. Events are placed by their
own timestamp, never by arrival order, so a late event lands in the windows it belongs to.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from attune.errors import ConfigError, ValidationFailed
from attune.events.model import IDENTITY_TYPES
from attune.features.refs import FeatureRef

MICROS = 1_000_000
DAY_MICROS = 86_400 * MICROS

#: Numeric features an engagement score may combine.
COMPOSABLE = ("dwell_seconds", "share_rate", "active_days", "frequency", "monetary")
#: Fields ``sum`` references may add up.
SUM_FIELDS = ("value", "dwell_seconds")
#: Event properties read as dwell time, first present wins (a JSON number >= 0).
DWELL_PROPERTIES = ("dwell_seconds", "duration")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float, what: str = "window") -> float:
    """Seconds of ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a plain number; > 0 or ConfigError."""
    if isinstance(text, bool):
        raise ConfigError(f"{what}: expected a duration like 1h or 7d, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ConfigError(f"{what}: expected a duration like 90s, 15m, 1h or 7d, got {text!r}")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{what}: must be longer than zero, got {text!r}")
    return seconds


def format_window(seconds: float | None) -> str:
    """A short label for a window (``7d``, ``1h``, ``90s``; ``all`` for none)."""
    if seconds is None:
        return "all"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def to_micros(seconds: float) -> int:
    """Epoch or duration seconds as integer microseconds, rounded like the lake rounds."""
    return round(seconds * MICROS)


@dataclass(frozen=True)
class FeatureDefinitions:
    """What the features are. Build from settings with :meth:`from_settings`."""

    windows: tuple[float, ...] = (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
    activity_window: float = 30 * 86400.0
    engagement_weights: dict[str, float] = field(
        default_factory=lambda: {
            "dwell_seconds": 0.3,
            "share_rate": 0.2,
            "active_days": 0.3,
            "frequency": 0.2,
        }
    )
    engagement_caps: dict[str, float] = field(
        default_factory=lambda: {
            "dwell_seconds": 1800.0,
            "share_rate": 0.25,
            "active_days": 10.0,
            "frequency": 50.0,
        }
    )
    view_types: frozenset[str] = frozenset({"view", "page_view"})
    share_types: frozenset[str] = frozenset({"share"})
    purchase_types: frozenset[str] = frozenset({"purchase"})
    #: How far past the newest event time a query instant may lie back (clock skew allowance):
    #: events older than the longest window plus this are folded into all-time aggregates.
    slack_seconds: float = 86400.0

    def __post_init__(self) -> None:
        if not self.windows:
            raise ConfigError("features.windows: at least one window is needed")
        for name, weight in self.engagement_weights.items():
            if name not in COMPOSABLE:
                raise ConfigError(
                    f"features.engagement_weights: unknown feature {name!r} (one of {', '.join(COMPOSABLE)})"
                )
            if not math.isfinite(weight) or weight < 0:
                raise ConfigError(f"features.engagement_weights.{name}: must be a number >= 0")
            cap = self.engagement_caps.get(name)
            if cap is None or not math.isfinite(cap) or cap <= 0:
                raise ConfigError(
                    f"features.engagement_caps.{name}: a cap > 0 is needed for every weighted feature"
                )
        if sum(self.engagement_weights.values()) <= 0:
            raise ConfigError("features.engagement_weights: at least one weight must be > 0")
        if self.activity_window > self.horizon_window:
            raise ConfigError(
                "features.activity_window: must not be longer than the longest of features.windows"
            )

    @classmethod
    def from_settings(cls, section: Any, max_future_seconds: float = 86400.0) -> FeatureDefinitions:
        """From the ``features`` settings section (and the ingest clock-skew allowance)."""
        return cls(
            windows=tuple(sorted(parse_duration(w, "features.windows") for w in section.windows)),
            activity_window=parse_duration(section.activity_window, "features.activity_window"),
            engagement_weights=dict(section.engagement_weights),
            engagement_caps=dict(section.engagement_caps),
            view_types=frozenset(section.view_types),
            share_types=frozenset(section.share_types),
            purchase_types=frozenset(section.purchase_types),
            slack_seconds=max(3600.0, float(max_future_seconds)),
        )

    @property
    def horizon_window(self) -> float:
        """The longest window a reference may use (the longest configured window)."""
        return max(self.windows)

    @property
    def retention_micros(self) -> int:
        """Events older than the newest event time minus this are folded into aggregates."""
        return to_micros(self.horizon_window + self.slack_seconds)

    def window_of(self, ref: FeatureRef) -> float | None:
        """The window a reference is computed over (named features default to the activity window)."""
        if ref.kind == "feature" and ref.window_seconds is None and ref.name != "recency_days":
            return self.activity_window
        return ref.window_seconds

    def check(self, ref: FeatureRef) -> None:
        """Raise :class:`ValidationFailed` when the features cannot answer ``ref`` exactly."""
        from attune.features.catalog import CONTEXT_ATTRIBUTES, FEATURE_NAMES

        where = ref.column
        if ref.kind in ("count", "sum", "distinct"):
            if not ref.event_type:
                raise ValidationFailed(f"{where}: an event type is needed")
            if ref.kind == "sum" and (ref.field or "value") not in SUM_FIELDS:
                raise ValidationFailed(
                    f"{where}: cannot sum field {ref.field!r}; summable fields are {', '.join(SUM_FIELDS)}"
                )
        elif ref.kind == "feature":
            if ref.name not in FEATURE_NAMES:
                raise ValidationFailed(
                    f"{where}: unknown feature {ref.name!r} (one of {', '.join(FEATURE_NAMES)})"
                )
        elif ref.kind == "context":
            if ref.name not in CONTEXT_ATTRIBUTES:
                raise ValidationFailed(
                    f"{where}: unknown context attribute {ref.name!r} (one of {', '.join(CONTEXT_ATTRIBUTES)})"
                )
        else:
            raise ValidationFailed(f"{where}: {ref.kind} references are answered by the segments engine")
        window = ref.window_seconds
        if window is not None:
            if not math.isfinite(window) or window <= 0:
                raise ValidationFailed(f"{where}: the window must be longer than zero")
            if window > self.horizon_window:
                raise ValidationFailed(
                    f"{where}: window {format_window(window)} is longer than the longest feature window "
                    f"{format_window(self.horizon_window)} (raise features.windows to keep more history)"
                )


def is_behaviour(event_type: str) -> bool:
    """Whether an event type is behaviour (counts for activity) rather than identity bookkeeping."""
    return event_type not in IDENTITY_TYPES
