"""Serving recommendations: the ranker, the user's seen items and business filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attune.catalog.items import Catalog
from attune.profiles.reader import ProfileReader
from attune.recommend.popularity import PopularityRanker


@dataclass
class RecommendedItem:
    """One recommended item with why it was chosen."""

    item_id: str
    score: float
    reason: str


@dataclass
class Recommendations:
    """The answer for one user."""

    user_id: str
    model: str
    personalized: bool
    items: list[RecommendedItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The response body of ``GET /v1/users/{id}/recommendations``."""
        return {
            "user_id": self.user_id,
            "model": self.model,
            "personalized": self.personalized,
            "items": [{"item_id": i.item_id, "score": round(i.score, 6), "reason": i.reason} for i in self.items],
        }


class RecommendationService:
    """Until trained models exist: time-decayed popularity minus what the user has seen.

    Popularity is the same list for everyone, so answers say ``"personalized": false``;
    only the exclusion of seen and unavailable items depends on the user.
    """

    def __init__(self, ranker: PopularityRanker, profiles: ProfileReader, catalog: Catalog) -> None:
        self.ranker = ranker
        self.profiles = profiles
        self.catalog = catalog

    def for_user(self, user_id: str, k: int = 10, exclude: set[str] | None = None) -> Recommendations:
        """Top-``k`` items for ``user_id``; unknown users get the plain popular list."""
        key = self.profiles.canonical_key(user_id)
        seen = self.profiles.seen_items(key)
        blocked = seen | set(self.catalog.unavailable()) | (exclude or set())
        half_life = self.ranker.half_life_days
        reason = f"popular: most engagement over the last weeks (half-life {half_life:g} days)"
        items = [RecommendedItem(i, s, reason) for i, s in self.ranker.top(k, blocked)]
        return Recommendations(user_id=user_id, model="popular", personalized=False, items=items)
