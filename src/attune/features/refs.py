"""The contract between segment rules and features: what a rule may ask about a person.

A segment rule is parsed into an expression over :class:`FeatureRef` values. The features
package answers them twice, with the same definitions: online for one person (a scalar per
ref, kept current by the features consumer) and offline for many people at a past instant
(one numpy array per ref, computed from the lake). The rule evaluator works on either, so
the real-time path and ``attune segments evaluate`` cannot disagree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: What a reference asks for.
#: ``count``    events of ``event_type`` in the window (optionally of one item ``category``)
#: ``sum``      sum of ``field`` ("value" or a numeric property) over those events
#: ``distinct`` distinct items among those events
#: ``feature``  a named scalar feature (``engagement_score``, ``recency_days``, ``frequency``,
#:              ``monetary``, ``dwell_seconds`` …), optionally over a window
#: ``trait``    a profile trait (``trait.age``)
#: ``context``  the person's latest context (``context.device``, ``context.city`` …)
#: ``segment``  membership of another segment (its confidence, 0 when not a member)
RefKind = Literal["count", "sum", "distinct", "feature", "trait", "context", "segment"]


@dataclass(frozen=True, slots=True)
class FeatureRef:
    """One value a rule needs about a person. Hashable: used as a dict key and column name."""

    kind: RefKind
    #: Event type for count/sum/distinct (canonical name, e.g. "view", "purchase").
    event_type: str | None = None
    #: Summed field for ``sum``: "value" or a property name.
    field: str | None = None
    #: Sliding window length in seconds; ``None`` means all time.
    window_seconds: float | None = None
    #: Only events on items of this category (catalog attribute ``category``/``genres``).
    category: str | None = None
    #: Name of the feature, trait, context attribute or segment.
    name: str | None = None

    @property
    def column(self) -> str:
        """A stable, readable identifier (column name in offline tables, key in caches)."""
        parts = [self.kind]
        for part in (self.event_type, self.field, self.name, self.category):
            if part is not None:
                parts.append(str(part))
        if self.window_seconds is not None:
            parts.append(f"{self.window_seconds:g}s")
        return ":".join(parts)
