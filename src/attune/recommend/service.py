"""Serving recommendations: the ranker, the user's seen items and business filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attune.catalog.items import Catalog
from attune.errors import NotFound, ValidationFailed
from attune.profiles.reader import ProfileReader
from attune.recommend.popularity import PopularityRanker
from attune.recommend.promoted import PromotedModelCache


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
    """Recommendations from the promoted model, with popularity as the fallback.

    A person the promoted model knows, or who has interactions it can fold in (their events
    since training count at once: real time without retraining), gets the model's ranking
    (``"personalized": true``). Everyone else, and any slot the model cannot fill, gets
    time-decayed popularity (``"personalized": false`` when nothing came from the model).
    Seen and unavailable items are always excluded.
    """

    def __init__(
        self,
        ranker: PopularityRanker,
        profiles: ProfileReader,
        catalog: Catalog,
        models: PromotedModelCache | None = None,
    ) -> None:
        self.ranker = ranker
        self.profiles = profiles
        self.catalog = catalog
        self.models = models

    def for_user(self, user_id: str, k: int = 10, exclude: set[str] | None = None) -> Recommendations:
        """Top-``k`` items for ``user_id``; unknown users get the plain popular list."""
        key = self.profiles.canonical_key(user_id)
        seen = self.profiles.seen_items(key)
        blocked = seen | set(self.catalog.unavailable()) | (exclude or set())
        items: list[RecommendedItem] = []
        model_name = "popular"
        bundle = self.models.current() if self.models is not None else None
        if bundle is not None and bundle.model.personalized and (key in bundle.model.user_index_ or seen):
            ids, scores = bundle.model.recommend(key, k + len(blocked), extra_items=sorted(seen))
            reason = f"{bundle.name} {bundle.version}: people with your history liked it"
            items = [RecommendedItem(i, float(s), reason) for i, s in zip(ids, scores, strict=False) if i not in blocked][:k]
            if items:
                model_name = f"{bundle.name}:{bundle.version}"
        if len(items) < k:
            taken = blocked | {i.item_id for i in items}
            half_life = self.ranker.half_life_days
            reason = f"popular: most engagement over the last weeks (half-life {half_life:g} days)"
            items += [RecommendedItem(i, s, reason) for i, s in self.ranker.top(k - len(items), taken)]
        return Recommendations(
            user_id=user_id, model=model_name, personalized=model_name != "popular", items=items
        )

    def similar_to(self, item_id: str, k: int = 10) -> dict[str, Any]:
        """Items like ``item_id`` from the promoted model; popularity when it cannot say.

        :class:`~attune.errors.NotFound` when neither the catalog nor the model knows the item.
        """
        unavailable = set(self.catalog.unavailable()) | {item_id}
        bundle = self.models.current() if self.models is not None else None
        items: list[RecommendedItem] = []
        model_name = "popular"
        if bundle is not None and item_id in bundle.model.item_index_:
            try:
                ids, scores = bundle.model.similar_items(item_id, k + len(unavailable))
            except ValidationFailed:  # a model without item similarity (e.g. popularity)
                ids, scores = [], []
            reason = f"similar to {item_id} ({bundle.name} {bundle.version})"
            items = [RecommendedItem(i, float(s), reason) for i, s in zip(ids, scores, strict=False) if i not in unavailable][:k]
            if items:
                model_name = f"{bundle.name}:{bundle.version}"
        elif not self.catalog.exists(item_id):
            raise NotFound(f"item {item_id!r} is neither in the catalog nor known to the model")
        if len(items) < k:
            reason = "popular: no similarity known for this item yet"
            taken = unavailable | {i.item_id for i in items}
            items += [RecommendedItem(i, s, reason) for i, s in self.ranker.top(k - len(items), taken)]
        return {
            "item_id": item_id,
            "model": model_name,
            "items": [{"item_id": i.item_id, "score": round(i.score, 6), "reason": i.reason} for i in items],
        }
