"""Business filters, MMR diversity and segment boosts on recommendations and similar items."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_shop import genre

from attune.errors import ValidationFailed
from attune.recommend.coldstart import StaticSegments
from attune.recommend.diversity import mmr
from attune.recommend.filters import Filters
from attune.runtime import Runtime

ALL_ITEMS = [f"{g}{i:02d}" for g in "dc" for i in range(20)]


@given(
    exclude=st.sets(st.sampled_from(ALL_ITEMS), max_size=10),
    category=st.sampled_from([None, "drama", "comedy", "Drama,comedy"]),
    exclude_category=st.sampled_from([None, "drama", "COMEDY"]),
    diversity=st.sampled_from([0.0, 0.5, 1.0]),
    user=st.sampled_from(["fr2", "us5", "ghost"]),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_answer_obeys_the_filters(
    shop: Runtime, exclude, category, exclude_category, diversity, user
) -> None:
    filters = Filters.parse(",".join(exclude), category, exclude_category, diversity)
    service = shop.recommendations
    for items in (
        [i.item_id for i in service.for_user(user, k=8, filters=filters).items],
        [i["item_id"] for i in service.similar_to("d02", k=8, filters=filters)["items"]],
    ):
        assert len(items) == len(set(items))
        assert not set(items) & (exclude | {"d19"})
        if category:
            wanted = {c.strip().lower() for c in category.split(",")}
            assert all(genre(i) in wanted for i in items)
        if exclude_category:
            assert all(genre(i) != exclude_category.lower() for i in items)
    assert not service.users.get(user).seen & {
        i.item_id for i in service.for_user(user, k=8, filters=filters).items
    }


def test_a_category_filter_against_the_taste_still_fills_the_list(shop: Runtime) -> None:
    result = shop.recommendations.for_user("fr0", k=5, filters=Filters.parse(category="comedy"))
    assert [genre(i.item_id) for i in result.items] == ["comedy"] * 5


def test_diversity_mixes_genres_the_plain_ranking_keeps_apart(shop: Runtime) -> None:
    service = shop.recommendations
    assert {genre(i.item_id) for i in service.for_user("fr4", k=6).items} == {"drama"}
    mixed = service.for_user("fr4", k=6, filters=Filters.parse(diversity=1.0)).items
    assert {genre(i.item_id) for i in mixed} == {"drama", "comedy"}
    assert {genre(i["item_id"]) for i in service.similar_to("d01", k=6)["items"]} == {"drama"}
    diverse = service.similar_to("d01", k=6, filters=Filters.parse(diversity=1.0))["items"]
    assert {genre(i["item_id"]) for i in diverse} == {"drama", "comedy"}


def test_segment_boosts_lift_the_boosted_category_for_members(make_runtime) -> None:
    from serving_shop import build_shop

    runtime = build_shop(
        make_runtime(serving={"min_group_size": 5, "segment_boosts": {"laughs": {"comedy": 1000.0}}}), "ease"
    )
    service = runtime.recommendations
    before = service.for_user("fr6", k=5)
    assert {genre(i.item_id) for i in before.items} == {"drama"}
    service.segments = StaticSegments({"u:fr6": [("laughs", 1.0)]})
    service.users.clear()
    after = service.for_user("fr6", k=5)
    assert genre(after.items[0].item_id) == "comedy"
    assert after.items[0].reason.endswith("; boosted in segment laughs")
    # Half the confidence, a much smaller factor: a weak boost does not overturn a strong taste.
    runtime.settings.serving.segment_boosts = {"laughs": {"comedy": 1.01}}
    service.config = type(service.config).from_settings(runtime.settings)
    service.users.clear()
    assert genre(service.for_user("fr6", k=5).items[0].item_id) == "drama"


def test_segment_filters_keep_a_category_from_members_only(make_runtime) -> None:
    from serving_shop import build_shop

    runtime = build_shop(make_runtime(serving={"min_group_size": 5, "segment_filters": {"no_drama": ["Drama"]}}), "ease")
    service = runtime.recommendations
    assert {genre(i.item_id) for i in service.for_user("fr6", k=5).items} == {"drama"}
    service.segments = StaticSegments({"u:fr6": [("no_drama", 1.0)]})
    service.users.clear()
    members_get = service.for_user("fr6", k=5)
    assert len(members_get.items) == 5 and "drama" not in {genre(i.item_id) for i in members_get.items}
    assert {genre(i.item_id) for i in service.for_user("fr7", k=5).items} == {"drama"}  # not a member


def test_diversity_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="diversity"):
        Filters.parse(diversity=1.5)


def test_mmr_without_diversity_keeps_the_relevance_order() -> None:
    rel = np.array([0.1, 0.9, 0.5, 0.7])
    assert mmr(rel, np.eye(4), 4, 0.0) == [1, 3, 2, 0]


def test_mmr_skips_near_duplicates() -> None:
    rel = np.array([1.0, 0.99, 0.5])
    sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert mmr(rel, sim, 2, 0.7) == [0, 2]


@given(
    rel=st.lists(st.floats(-5, 5), min_size=1, max_size=30),
    k=st.integers(1, 40),
    diversity=st.floats(0, 1),
    seed=st.integers(0, 1000),
)
def test_mmr_picks_distinct_candidates_and_the_best_first(rel, k, diversity, seed) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(rel), 4))
    sim = vectors @ vectors.T
    picked = mmr(np.array(rel), sim, k, diversity)
    assert len(picked) == min(k, len(rel)) == len(set(picked))
    assert rel[picked[0]] == max(rel)
