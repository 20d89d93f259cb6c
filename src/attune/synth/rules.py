"""The documented rules that recover each planted segment from the events alone.

A rule looks only at what any consumer of the event stream can see: event types, item
categories (from ``items.csv``), device types, timestamps, and identify events linking
anonymous ids to user ids. "Item views" are events of type ``view``. Anonymous events count
for the user their ``anonymous_id`` is later identified as.

Rules, for a period of D days (thresholds scale with D/28; tuned for D = 28), tried in this
order, the first match wins:

1. ``churned``: at least one event, and every event before the midpoint (start + D/2 days).
2. ``drama_fans``: at least ceil(20·D/28) item views, and at least 50 % of them on items
   whose category is ``drama``.
3. ``big_spenders``: at least max(2, round(4·D/28)) purchases, and purchases on at least
   15 % of item views.
4. ``mobile_browsers``: every event from ``context.device.type == "mobile"``, at least
   ceil(50·D/28) item views, no purchase, and add_to_cart on fewer than 3 % of item views.
5. ``casual``: none of the above.

The order matters only where behaviour genuinely overlaps: a drama fan on a phone who never
buys also looks like a mobile browser, so the drama rule is tried first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from attune.synth.segments import REFERENCE_DAYS

#: How every rule reads the events; written to ``truth.json`` next to the rules.
RULE_CONVENTIONS = (
    "A user's events include the anonymous events of every anonymous_id an event links to the "
    "user_id (identify events do). 'view events' are events of type 'view'; an item's category "
    "is the category column of items.csv. Rules are tried in the order churned, drama_fans, "
    "big_spenders, mobile_browsers; the first match wins, and a user matching none is casual."
)

#: The order in which rules are tried; ``casual`` is the fallback.
RULE_ORDER: tuple[str, ...] = ("churned", "drama_fans", "big_spenders", "mobile_browsers")


@dataclass(frozen=True, slots=True)
class RuleThresholds:
    """The numbers in the rules for one period."""

    midpoint: float
    min_drama_views: int
    drama_share: float
    min_purchases: int
    purchase_rate: float
    min_mobile_views: int
    max_cart_rate: float

    @classmethod
    def for_period(cls, start: float, days: int) -> RuleThresholds:
        """Thresholds for ``days`` days from epoch second ``start``."""
        scale = days / REFERENCE_DAYS
        return cls(
            midpoint=start + days * 86400 / 2,
            min_drama_views=math.ceil(20 * scale),
            drama_share=0.5,
            min_purchases=max(2, round(4 * scale)),
            purchase_rate=0.15,
            min_mobile_views=math.ceil(50 * scale),
            max_cart_rate=0.03,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for ``truth.json``."""
        return asdict(self)

    def texts(self) -> dict[str, str]:
        """The rule of every segment, in words, with this period's numbers."""
        midpoint = datetime.fromtimestamp(self.midpoint, UTC).isoformat().replace("+00:00", "Z")
        return {
            "churned": f"has events, and every event is before the midpoint {midpoint}",
            "drama_fans": (
                f"at least {self.min_drama_views} view events, and at least {self.drama_share:.0%} of "
                "them on items of category 'drama'"
            ),
            "big_spenders": (
                f"at least {self.min_purchases} purchase events, and purchase events at least "
                f"{self.purchase_rate:.0%} of view events"
            ),
            "mobile_browsers": (
                f"every event has context.device.type == 'mobile', at least {self.min_mobile_views} "
                f"view events, no purchase, and add_to_cart events fewer than "
                f"{self.max_cart_rate:.0%} of view events"
            ),
            "casual": "matches none of the other rules",
        }


@dataclass(slots=True)
class Activity:
    """What the rules need to know about one person's events."""

    events: int = 0
    views: int = 0
    drama_views: int = 0
    carts: int = 0
    purchases: int = 0
    purchase_value: float = 0.0
    last_timestamp: float = -math.inf
    devices: set[str] = field(default_factory=set)

    def merge(self, other: Activity) -> None:
        """Add ``other``'s events to these."""
        self.events += other.events
        self.views += other.views
        self.drama_views += other.drama_views
        self.carts += other.carts
        self.purchases += other.purchases
        self.purchase_value += other.purchase_value
        self.last_timestamp = max(self.last_timestamp, other.last_timestamp)
        self.devices |= other.devices


def summarize(events: Iterable[Mapping[str, Any]], item_category: Mapping[str, str]) -> dict[str, Activity]:
    """Per-user activity from native events, anonymous events folded into their user."""
    by_user: dict[str, Activity] = {}
    by_anonymous: dict[str, Activity] = {}
    owner: dict[str, str] = {}
    for event in events:
        user_id, anonymous_id = event.get("user_id"), event.get("anonymous_id")
        if user_id is not None and anonymous_id is not None:
            owner.setdefault(anonymous_id, user_id)
        if user_id is not None:
            activity = by_user.setdefault(user_id, Activity())
        else:
            activity = by_anonymous.setdefault(anonymous_id, Activity())
        _count(activity, event, item_category)
    for anonymous_id, activity in by_anonymous.items():
        if anonymous_id in owner:
            by_user.setdefault(owner[anonymous_id], Activity()).merge(activity)
    return by_user


def matching_rules(activity: Activity, thresholds: RuleThresholds) -> list[str]:
    """Every planted segment whose rule ``activity`` satisfies, in RULE_ORDER."""
    t = thresholds
    found = []
    if activity.events and activity.last_timestamp < t.midpoint:
        found.append("churned")
    if activity.views >= t.min_drama_views and activity.drama_views >= t.drama_share * activity.views:
        found.append("drama_fans")
    if activity.purchases >= t.min_purchases and activity.purchases >= t.purchase_rate * activity.views:
        found.append("big_spenders")
    if (
        activity.devices == {"mobile"}
        and activity.views >= t.min_mobile_views
        and activity.purchases == 0
        and activity.carts < t.max_cart_rate * activity.views
    ):
        found.append("mobile_browsers")
    return found


def recover_segments(
    events: Iterable[Mapping[str, Any]], item_category: Mapping[str, str], thresholds: RuleThresholds
) -> dict[str, str]:
    """Each user's segment by the documented rules: the first matching rule, else ``casual``."""
    return {
        user_id: next(iter(matching_rules(activity, thresholds)), "casual")
        for user_id, activity in summarize(events, item_category).items()
    }


def _count(activity: Activity, event: Mapping[str, Any], item_category: Mapping[str, str]) -> None:
    activity.events += 1
    kind = event.get("type")
    if kind == "view":
        activity.views += 1
        if item_category.get(event.get("item_id", "")) == "drama":
            activity.drama_views += 1
    elif kind == "add_to_cart":
        activity.carts += 1
    elif kind == "purchase":
        activity.purchases += 1
        activity.purchase_value += float(event.get("value") or 0.0)
    timestamp = event.get("timestamp")
    if isinstance(timestamp, str):
        timestamp = datetime.fromisoformat(timestamp).timestamp()
    if timestamp is not None:
        activity.last_timestamp = max(activity.last_timestamp, float(timestamp))
    device = ((event.get("context") or {}).get("device") or {}).get("type")
    activity.devices.add(device or "unknown")
