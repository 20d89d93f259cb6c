"""What rules may ask the features about: named features and context attributes.

``FEATURE_CATALOG`` is what :func:`attune.segments.rules.validate_rule` checks names against.

Named features (``FeatureRef("feature", name=…)``; all but ``recency_days`` take an optional
window, default ``features.activity_window``, 30 days):

- ``recency_days``     days since the latest behavioural event at or before now (missing when none)
- ``frequency``        behavioural events (everything but identify/alias/group) in the window
- ``active_days``      distinct UTC days with behavioural events in the window (revisits)
- ``monetary``         sum of ``value`` over purchases in the window
- ``dwell_seconds``    sum of dwell time in the window: each event's ``properties.dwell_seconds``,
                       else ``properties.duration`` (a JSON number >= 0; anything else is ignored)
- ``share_rate``       shares / max(views, 1) in the window (``features.share_types``/``view_types``)
- ``engagement_score`` weighted mean of min(feature / cap, 1) (``features.engagement_weights``/``caps``), in [0, 1]

Context attributes (``FeatureRef("context", name=…)``), each from the latest event at or before
now that carries it (latest by event time, then log offset):

- ``device`` (``context.device.type``), ``os``, ``browser``, ``country``, ``city`` (``context.geo.city``)
- ``hour`` (0-23), ``weekday`` (``monday``…``sunday``), ``daypart`` (night/morning/afternoon/evening):
  the local time of the latest behavioural event, in its ``context.timezone`` (IANA name) when
  present and valid, else UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURE_NAMES = frozenset(
    {
        "recency_days",
        "frequency",
        "active_days",
        "monetary",
        "dwell_seconds",
        "share_rate",
        "engagement_score",
    }
)
#: Context attributes read from stored event columns, in storage order.
STORED_CONTEXT = ("device", "os", "browser", "country", "city")
CONTEXT_ATTRIBUTES = frozenset({*STORED_CONTEXT, "hour", "weekday", "daypart"})


@dataclass(frozen=True)
class FeatureCatalog:
    """Names a rule may use: ``features`` (bare names), ``context`` (``context.x``), event types."""

    features: frozenset[str]
    context: frozenset[str]
    #: ``None``: any event type is allowed (custom events are welcome).
    event_types: frozenset[str] | None = None


FEATURE_CATALOG = FeatureCatalog(features=FEATURE_NAMES, context=CONTEXT_ATTRIBUTES)
