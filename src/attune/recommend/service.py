"""Serving recommendations: the promoted model, the cold-start chain, business filters, reasons.

Who gets what (each item's ``reason`` names the step that produced it):

- a person the model was trained on gets the model's ranking; their events since training are
  folded in (``"because you viewed <title>"``: the touched item most similar to the
  recommended one);
- a new person with a few events gets item-to-item recommendations from those first events,
  and a fold-in once they have ``fold_in_min_items`` items the model knows;
- a person whose items the model has never seen (brand-new items) gets content similarity
  over catalog attributes (``"similar to <title> you viewed (content)"``);
- a person with no events gets, in order, popularity in their most confident segment
  (``"popular in segment drama_fans"``), popularity among people with the same traits
  (``"popular among people like you (country=fr)"``), then overall time-decayed popularity
  (``"popular: ..."``); any slot the earlier steps cannot fill is filled by the later ones.

Every answer obeys the :class:`~attune.recommend.filters.Filters` (excluded ids, categories,
availability), never repeats an item the person touched, optionally re-ranks by MMR
(``diversity``), and boosts categories per segment (``segment_boosts``).

Speed: everything a request reads is in memory — people (:mod:`attune.recommend.usercache`),
the catalog (:mod:`attune.recommend.catalogview`), the prepared model
(:mod:`attune.recommend.scoring`), popularity lists. :meth:`RecommendationService.try_for_user`
answers from memory or says it cannot (``None``); only then does the caller run
:meth:`RecommendationService.for_user`, which may read the store, in a worker thread.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

from attune.catalog.items import Catalog
from attune.errors import NotFound
from attune.profiles.reader import ProfileReader
from attune.recommend.catalogview import CatalogSnapshot, CatalogView
from attune.recommend.coldstart import ColdStartConfig, NoSegments, SegmentSource
from attune.recommend.diversity import mmr
from attune.recommend.filters import NO_FILTERS, Filters
from attune.recommend.popularity import PopularityRanker, Ranking
from attune.recommend.promoted import PromotedModelCache
from attune.recommend.scoring import ServingModel, UserView, top_indices
from attune.recommend.usercache import ProfileChanges, UserCache, UserState

log = logging.getLogger(__name__)


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
            "items": [
                {"item_id": i.item_id, "score": round(i.score, 6), "reason": i.reason} for i in self.items
            ],
        }


class ConsentCheck(Protocol):
    """Whether a person allows personalization (the privacy module implements it, in memory)."""

    def allows_personalization(self, user_key: str) -> bool: ...


@dataclass(frozen=True)
class ServingConfig:
    """Serving knobs (``[serving]`` in the settings when present)."""

    #: A new person's events are folded into a user vector from this many model-known items;
    #: below it they get item-to-item recommendations from those first events.
    fold_in_min_items: int = 3
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    #: Per segment, per category: score multiplier for members (weighted by confidence).
    segment_boosts: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: Per segment: categories never recommended to its members (e.g. a "kids" segment).
    segment_filters: Mapping[str, frozenset[str]] = field(default_factory=dict)
    user_cache_size: int = 200_000
    user_cache_seconds: float = 600.0
    catalog_poll_seconds: float = 10.0
    #: Keep each person's rendered answers until something they depend on changes.
    cache_bodies: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> ServingConfig:
        """From ``settings.serving`` (any object with some of these field names), else defaults."""
        section = getattr(settings, "serving", None)
        if section is None:
            return cls()
        get = lambda n, d: getattr(section, n, d)
        return cls(
            fold_in_min_items=int(get("fold_in_min_items", 3)),
            cold_start=ColdStartConfig(
                traits=tuple(get("demographic_traits", ColdStartConfig.traits)),
                min_group_size=int(get("min_group_size", ColdStartConfig.min_group_size)),
            ),
            segment_boosts={
                str(s): {str(c).lower(): float(f) for c, f in boosts.items()}
                for s, boosts in dict(get("segment_boosts", {}) or {}).items()
            },
            segment_filters={
                str(s): frozenset(str(c).lower() for c in categories)
                for s, categories in dict(get("segment_filters", {}) or {}).items()
            },
            user_cache_size=int(get("user_cache_size", 200_000)),
            user_cache_seconds=float(get("user_cache_seconds", 600.0)),
            catalog_poll_seconds=float(get("catalog_poll_seconds", 10.0)),
            cache_bodies=bool(get("cache_bodies", True)),
        )


class _NeedsStore(Exception):
    """Raised inside the in-memory path when an answer needs a database read."""


class RecommendationService:
    """Recommendations and similar items (see the module docstring for the chain)."""

    def __init__(
        self,
        ranker: PopularityRanker,
        profiles: ProfileReader,
        catalog: Catalog,
        models: PromotedModelCache | None = None,
        *,
        changes: ProfileChanges | None = None,
        segments: SegmentSource | None = None,
        consent: ConsentCheck | None = None,
        config: ServingConfig | None = None,
    ) -> None:
        self.config = config or ServingConfig()
        self.ranker = ranker
        self.profiles = profiles
        self.catalog = catalog
        self.models = models
        if models is not None:  # the prepared model follows the serving settings
            models.fold_in_min_items = self.config.fold_in_min_items
            models.cold_start = self.config.cold_start
        self.segments: SegmentSource = segments or NoSegments()
        self.consent = consent
        self.users = UserCache(
            profiles,
            changes,
            max_users=self.config.user_cache_size,
            max_age_seconds=self.config.user_cache_seconds,
        )
        self.catalog_view = CatalogView(catalog, self.config.catalog_poll_seconds)
        self._warming_started = False

    def _start_warming(self) -> None:
        """Fill the people cache, the catalog view and popularity in the background (first request)."""
        self._warming_started = True

        def warm() -> None:
            try:
                self.catalog_view.get()
                self.ranker.ranking()
                added = self.users.preload()
                # Long-lived now: keep the cyclic collector from walking them in every full
                # collection (the same reasoning as the gc.freeze() at server start).
                gc.freeze()
                log.info("serving cache warmed with %d people", added)
            except Exception:
                log.exception("warming the serving cache failed")

        threading.Thread(target=warm, daemon=True, name="serving-warm-up").start()

    # -- wiring ------------------------------------------------------------------------------
    def watch(self, changes: ProfileChanges) -> None:
        """Keep the people cache current from the profiles consumer's progress."""
        self.users.changes = changes

    # -- recommendations -----------------------------------------------------------------
    def try_for_user(
        self, user_id: str, k: int = 10, filters: Filters = NO_FILTERS
    ) -> Recommendations | None:
        """The answer from memory alone, or ``None`` when it needs the store (then call :meth:`for_user`)."""
        found = self._try(user_id, k, filters)
        return found[0] if found is not None else None

    def try_json(self, user_id: str, k: int = 10, filters: Filters = NO_FILTERS) -> bytes | None:
        """The response body from memory alone, or ``None`` when it needs the store.

        Bodies are kept on the person's cached state, keyed by everything they depend on
        (model version, catalog generation, popularity list when used, ``k``, filters,
        consent, segments), so a repeated request costs a dictionary lookup, and any change
        to the person (new events) drops them with the state.
        """
        found = self._try(user_id, k, filters, as_json=True)
        return found[1] if found is not None else None

    def _try(
        self, user_id: str, k: int, filters: Filters, as_json: bool = False
    ) -> tuple[Recommendations | None, bytes | None] | None:
        if not self._warming_started:
            self._start_warming()
        state = self.users.peek(user_id)
        catalog = self.catalog_view.peek()
        ranking = self.ranker.peek()
        if state is None or catalog is None:
            return None
        serving, allowed, segments = self._context(state)
        key = (
            "body",
            serving.label if serving is not None else None,
            catalog.generation,
            k,
            filters,
            allowed,
            tuple(segments),
        )
        if as_json:
            body = state.derived.get(key)
            if body is None and ranking is not None:
                body = state.derived.get((*key, ranking.generation))
            if body is not None:
                return None, body
        try:
            result, used_ranking = self._answer(
                state, k, filters, catalog, ranking, serving, allowed, segments, allow_store=False
            )
        except _NeedsStore:
            return None
        if not as_json:
            return result, None
        body = orjson.dumps(result.to_dict())
        if (
            self.config.cache_bodies and len(state.derived) < 64
        ):  # a handful of k/filter variants per person at most
            state.derived[
                (*key, ranking.generation if ranking is not None else 0) if used_ranking else key
            ] = body
        return None, body

    def _context(self, state: UserState) -> tuple[ServingModel | None, bool, list[tuple[str, float]]]:
        serving = self.models.serving() if self.models is not None else None
        allowed = self.consent is None or self.consent.allows_personalization(state.key)
        segments = self.segments.segments_of(state.key) if allowed else []
        return serving, allowed, segments

    def for_user(
        self, user_id: str, k: int = 10, exclude: set[str] | None = None, filters: Filters | None = None
    ) -> Recommendations:
        """Top-``k`` items for ``user_id``; unknown users get a non-personalized list, never an error."""
        filters = filters or NO_FILTERS
        if exclude:
            filters = Filters(
                filters.exclude | frozenset(exclude),
                filters.categories,
                filters.exclude_categories,
                filters.diversity,
            )
        state = self.users.get(user_id)
        serving, allowed, segments = self._context(state)
        result, _ = self._answer(
            state,
            k,
            filters,
            self.catalog_view.get(),
            self.ranker.ranking(),
            serving,
            allowed,
            segments,
            allow_store=True,
        )
        return result

    def _answer(
        self,
        state: UserState,
        k: int,
        filters: Filters,
        catalog: CatalogSnapshot,
        ranking: Ranking | None,
        serving: ServingModel | None,
        allowed: bool,
        segments: list[tuple[str, float]],
        *,
        allow_store: bool,
    ) -> tuple[Recommendations, bool]:
        """The answer, and whether it used the popularity ranking."""
        filters = self._segment_filters(segments, filters)
        boosts = self._boosts(segments)
        items: list[RecommendedItem] = []
        model = "popular"
        if allowed and serving is not None and serving.personalized:
            view = serving.view(state)
            if view.mode in ("model", "fold-in", "session"):
                items = self._from_model(serving, view, k, filters, catalog, boosts)
                model = serving.label if items else model
            elif view.mode == "content":
                items = self._from_content(state, k, filters, catalog)
                model = "content" if items else model
        elif allowed and state.items:
            items = self._from_content(state, k, filters, catalog)
            model = "content" if items else model
        used_ranking = len(items) < k
        if used_ranking:
            taken = {i.item_id for i in items}
            items += self._cold_start(
                state,
                k - len(items),
                filters,
                catalog,
                ranking,
                serving,
                segments,
                boosts,
                taken,
                allow_store,
            )
        answer = Recommendations(
            user_id=state.user_id, model=model, personalized=model != "popular", items=items
        )
        return answer, used_ranking

    # -- the model ---------------------------------------------------------------------------
    def _from_model(
        self,
        serving: ServingModel,
        view: UserView,
        k: int,
        filters: Filters,
        catalog: CatalogSnapshot,
        boosts: list[tuple[frozenset[str], float, str]],
    ) -> list[RecommendedItem]:
        pool = k if filters.diversity <= 0 else max(3 * k, 30)
        idx, values = serving.rank(view, pool, filters, catalog, [(c, f) for c, f, _ in boosts])
        if filters.diversity > 0 and len(idx) > 1:
            similarity = serving.similarity_matrix(idx, idx)
            if similarity is not None:
                order = mmr(values, similarity, k, filters.diversity)
                idx, values = idx[order], values[order]
        idx, values = idx[:k], values[:k]
        reasons = self._explain(serving, view, idx, catalog, boosts)
        return [
            RecommendedItem(serving.item_ids[j], float(s), r)
            for j, s, r in zip(idx, values, reasons, strict=True)
        ]

    # -- segment filters and boosts ----------------------------------------------------------
    def _segment_filters(self, segments: list[tuple[str, float]], filters: Filters) -> Filters:
        """``filters`` plus the categories the person's segments exclude."""
        excluded = frozenset().union(
            *(self.config.segment_filters.get(name, frozenset()) for name, confidence in segments if confidence > 0)
        )
        if excluded <= filters.exclude_categories:
            return filters
        return Filters(filters.exclude, filters.categories, filters.exclude_categories | excluded, filters.diversity)

    def _boosts(self, segments: list[tuple[str, float]]) -> list[tuple[frozenset[str], float, str]]:
        """(category, effective factor, segment) for the person's segments with configured boosts."""
        out = []
        for name, confidence in segments:
            for category, factor in self.config.segment_boosts.get(name, {}).items():
                effective = 1.0 + max(0.0, min(1.0, float(confidence))) * (float(factor) - 1.0)
                if effective != 1.0 and effective > 0:
                    out.append((frozenset({category}), effective, name))
        return out

    # -- explanations --------------------------------------------------------------------------
    def _explain(
        self,
        serving: ServingModel,
        view: UserView,
        idx: np.ndarray,
        catalog: CatalogSnapshot,
        boosts: list[tuple[frozenset[str], float, str]],
    ) -> list[str]:
        reasons = [f"{serving.name} {serving.version}: people with your history liked it"] * len(idx)
        similarity = serving.similarity_matrix(idx, view.sources) if len(view.sources) else None
        if similarity is not None and similarity.size:
            best = similarity.argmax(axis=1)
            reasons = [
                f"because you viewed {catalog.title(serving.item_ids[int(view.sources[b])])}" for b in best
            ]
        if boosts:
            for n, j in enumerate(idx):
                segs = [s for cats, _, s in boosts if catalog.in_categories(serving.item_ids[j], cats)]
                if segs:
                    reasons[n] += f"; boosted in segment {segs[0]}"
        return reasons

    # -- content ------------------------------------------------------------------------------
    def _from_content(
        self, state: UserState, k: int, filters: Filters, catalog: CatalogSnapshot
    ) -> list[RecommendedItem]:
        found = catalog.content_similar(state.items[-50:], exclude=state.seen | filters.exclude)
        out = []
        for item_id, score, source in found:
            if self._passes(item_id, filters, catalog):
                out.append(
                    RecommendedItem(
                        item_id, score, f"similar to {catalog.title(source)} you viewed (content)"
                    )
                )
                if len(out) >= k:
                    break
        return out

    @staticmethod
    def _passes(item_id: str, filters: Filters, catalog: CatalogSnapshot) -> bool:
        if item_id in filters.exclude or item_id in catalog.unavailable:
            return False
        if filters.categories and not catalog.in_categories(item_id, filters.categories):
            return False
        return not (filters.exclude_categories and catalog.in_categories(item_id, filters.exclude_categories))

    # -- cold start ------------------------------------------------------------------------------
    def _cold_start(
        self,
        state: UserState,
        k: int,
        filters: Filters,
        catalog: CatalogSnapshot,
        ranking: Ranking | None,
        serving: ServingModel | None,
        segments: list[tuple[str, float]],
        boosts: list[tuple[frozenset[str], float, str]],
        taken: set[str],
        allow_store: bool,
    ) -> list[RecommendedItem]:
        blocked = state.seen | taken
        out: list[RecommendedItem] = []
        lists: list[tuple[list[str], np.ndarray | list[float], str]] = []
        if serving is not None:
            for name, _confidence in sorted(segments, key=lambda s: -s[1]):
                items, scores = serving.groups.for_segment(name, self.segments.members(name))
                if items:
                    lists.append((items, scores, f"popular in segment {name}"))
            if state.traits and any(t in state.traits for t in serving.groups.config.traits):
                if serving.groups._traits is None and not allow_store:
                    raise _NeedsStore
                group = serving.groups.for_traits(self.profiles.engine, state.traits, self.profiles.vault)
                if group is not None:
                    described, items, scores = group
                    lists.append((items, scores, f"popular among people like you ({described})"))
        if ranking is None:
            if not allow_store:
                raise _NeedsStore
            ranking = self.ranker.ranking()
        half_life = self.ranker.half_life_days
        lists.append(
            (
                ranking.item_ids,
                ranking.scores,
                f"popular: most engagement over the last weeks (half-life {half_life:g} days)",
            )
        )
        for items, scores, reason in lists:
            pool: list[tuple[str, float]] = []
            want = k - len(out) if not boosts else 5 * (k - len(out))
            for item_id, score in zip(items, scores, strict=False):
                if item_id in blocked or not self._passes(item_id, filters, catalog):
                    continue
                pool.append((item_id, float(score)))
                if len(pool) >= want:
                    break
            if boosts:
                pool = sorted(
                    ((i, s * self._factor(i, catalog, boosts)) for i, s in pool), key=lambda p: -p[1]
                )[: k - len(out)]
            for item_id, score in pool:
                out.append(RecommendedItem(item_id, score, reason))
                blocked = blocked | {item_id}
            if len(out) >= k:
                break
        return out

    @staticmethod
    def _factor(
        item_id: str, catalog: CatalogSnapshot, boosts: list[tuple[frozenset[str], float, str]]
    ) -> float:
        factor = 1.0
        for cats, f, _ in boosts:
            if catalog.in_categories(item_id, cats):
                factor *= f
        return factor

    # -- similar items ---------------------------------------------------------------------------
    def try_similar_to(
        self, item_id: str, k: int = 10, filters: Filters = NO_FILTERS
    ) -> dict[str, Any] | None:
        """:meth:`similar_to` from memory alone, or ``None`` when it needs the store."""
        snapshot = self.catalog_view.peek()
        ranking = self.ranker.peek()
        if snapshot is None or ranking is None:
            return None
        return self._similar(item_id, k, filters, snapshot, ranking)

    def similar_to(self, item_id: str, k: int = 10, filters: Filters | None = None) -> dict[str, Any]:
        """Items like ``item_id``: from the promoted model, by content for items it has not seen, else popular.

        :class:`~attune.errors.NotFound` when neither the catalog nor the model knows the item.
        """
        return self._similar(
            item_id, k, filters or NO_FILTERS, self.catalog_view.get(), self.ranker.ranking()
        )

    def _similar(
        self, item_id: str, k: int, filters: Filters, catalog: CatalogSnapshot, ranking: Ranking
    ) -> dict[str, Any]:
        serving = self.models.serving() if self.models is not None else None
        items: list[RecommendedItem] = []
        model_name = "popular"
        in_model = serving is not None and item_id in serving.item_index
        if not in_model and not catalog.exists(item_id):
            raise NotFound(f"item {item_id!r} is neither in the catalog nor known to the model")
        title = catalog.title(item_id)
        if (
            in_model
            and serving is not None
            and serving.similarity_matrix(np.zeros(1, np.int64), np.zeros(1, np.int64)) is not None
        ):
            j = serving.item_index[item_id]
            view = UserView("similar", np.array([j], dtype=np.int64), np.array([j], dtype=np.int64))
            pool = k if filters.diversity <= 0 else max(3 * k, 30)
            scores = serving.similarity_scores(j)
            serving.block(scores, view.seen, filters, catalog)
            idx = top_indices(scores, pool)
            values = scores[idx].astype(np.float64)
            if filters.diversity > 0 and len(idx) > 1:
                similarity = serving.similarity_matrix(idx, idx)
                if similarity is not None:
                    order = mmr(values, similarity, k, filters.diversity)
                    idx, values = idx[order], values[order]
            items = [
                RecommendedItem(serving.item_ids[i], float(s), f"similar to {title}")
                for i, s in zip(idx[:k], values[:k], strict=True)
            ]
            model_name = serving.label if items else model_name
        if not items and catalog.exists(item_id):
            found = catalog.content_similar([item_id], exclude=filters.exclude | {item_id})
            for other, score, _ in found:
                if self._passes(other, filters, catalog):
                    items.append(
                        RecommendedItem(other, score, f"similar content to {title} (no interactions yet)")
                    )
                    if len(items) >= k:
                        break
            model_name = "content" if items else model_name
        if len(items) < k:
            taken = {i.item_id for i in items} | {item_id}
            reason = "popular: no similarity known for this item yet"
            for other, score in zip(ranking.item_ids, ranking.scores, strict=True):
                if other in taken or not self._passes(other, filters, catalog):
                    continue
                items.append(RecommendedItem(other, float(score), reason))
                if len(items) >= k:
                    break
        return {
            "item_id": item_id,
            "model": model_name,
            "items": [{"item_id": i.item_id, "score": round(i.score, 6), "reason": i.reason} for i in items],
        }
