"""Ground truth: what was planted, so tests and benchmarks can check what a system found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from attune.synth.population import Population
from attune.synth.rules import RULE_CONVENTIONS, RuleThresholds
from attune.synth.segments import SEGMENTS
from attune.synth.vocabulary import CATEGORIES


@dataclass(frozen=True, slots=True, eq=False)
class GroundTruth:
    """The planted answers of one synthetic data set.

    ``segment_of`` maps user id to planted segment, ``favourites`` to favourite categories
    (main first), ``anonymous_id_of`` to the device id the user's events carry, and
    ``anonymous_sessions`` to how many sessions ran before the user identified.
    ``rules`` holds the rule text per segment (see :mod:`attune.synth.rules`) and
    ``thresholds`` the same rules as numbers.
    """

    seed: int
    start: datetime
    end: datetime
    midpoint: datetime
    thresholds: RuleThresholds
    rules: dict[str, str]
    segment_of: dict[str, str]
    favourites: dict[str, list[str]]
    anonymous_id_of: dict[str, str]
    anonymous_sessions: dict[str, int]

    def users_in(self, segment: str) -> set[str]:
        """The user ids planted in ``segment``."""
        return {user for user, planted in self.segment_of.items() if planted == segment}

    def segment_counts(self) -> dict[str, int]:
        """How many users were planted in each segment (every segment listed)."""
        counts = Counter(self.segment_of.values())
        return {segment: counts.get(segment, 0) for segment in SEGMENTS}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, as written to ``truth.json``."""
        return {
            "seed": self.seed,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "midpoint": _iso(self.midpoint),
            "rules": self.rules,
            "rule_conventions": RULE_CONVENTIONS,
            "thresholds": self.thresholds.as_dict(),
            "segment_counts": self.segment_counts(),
            "users": {
                user: {
                    "segment": segment,
                    "favourite_categories": self.favourites[user],
                    "anonymous_id": self.anonymous_id_of[user],
                    "anonymous_sessions": self.anonymous_sessions[user],
                }
                for user, segment in self.segment_of.items()
            },
        }


def build_truth(
    seed: int,
    start: datetime,
    end: datetime,
    days: int,
    users: Population,
    anonymous_sessions: np.ndarray,
) -> GroundTruth:
    """Collect the planted answers for ``users``."""
    thresholds = RuleThresholds.for_period(start.timestamp(), days)
    return GroundTruth(
        seed=seed,
        start=start,
        end=end,
        midpoint=datetime.fromtimestamp(thresholds.midpoint, start.tzinfo),
        thresholds=thresholds,
        rules=thresholds.texts(),
        segment_of={u: SEGMENTS[s] for u, s in zip(users.user_ids, users.segment.tolist(), strict=True)},
        favourites={
            u: [CATEGORIES[c] for c in fav] for u, fav in zip(users.user_ids, users.favourites, strict=True)
        },
        anonymous_id_of=dict(zip(users.user_ids, users.anonymous_ids, strict=True)),
        anonymous_sessions=dict(zip(users.user_ids, anonymous_sessions.tolist(), strict=True)),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
