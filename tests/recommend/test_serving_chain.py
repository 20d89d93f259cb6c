"""Who gets what: the model, fold-in, item-to-item, content, segment and demographic popularity."""

from __future__ import annotations

from serving_shop import genre, send

from attune.recommend.coldstart import StaticSegments
from attune.runtime import Runtime


def test_trained_people_get_their_taste_with_a_reason_from_their_history(shop: Runtime) -> None:
    service = shop.recommendations
    for user in ("fr3", "us3"):
        result = service.for_user(user, k=5)
        wanted = "drama" if user.startswith("fr") else "comedy"
        assert result.personalized and result.model.endswith(":v1")
        assert [genre(i.item_id) for i in result.items] == [wanted] * 5
        seen = service.users.get(user).seen
        assert seen.isdisjoint(i.item_id for i in result.items)
        titles = {
            f"because you viewed {('Drama' if s.startswith('d') else 'Comedy')} {int(s[1:])}" for s in seen
        }
        assert all(i.reason in titles for i in result.items), [i.reason for i in result.items]


def test_out_of_stock_items_are_never_recommended(shop: Runtime) -> None:
    for user in [f"fr{n}" for n in range(30)]:
        assert "d19" not in {i.item_id for i in shop.recommendations.for_user(user, k=12).items}


def test_a_new_person_with_one_event_gets_item_to_item_then_fold_in(shop: Runtime) -> None:
    service = shop.recommendations
    send(shop, [{"type": "view", "user_id": "newbie", "item_id": "c04"}])
    first = service.for_user("newbie", k=4)
    assert first.personalized
    assert [genre(i.item_id) for i in first.items] == ["comedy"] * 4
    assert all(i.reason == "because you viewed Comedy 4" for i in first.items)
    assert "c04" not in {i.item_id for i in first.items}
    send(shop, [{"type": "view", "user_id": "newbie", "item_id": f"c{n:02d}"} for n in (5, 6, 7)])
    view = service.models.serving().view(service.users.get("newbie"))
    assert view.mode == "fold-in"
    assert all(genre(i.item_id) == "comedy" for i in service.for_user("newbie", k=4).items)


def test_trained_people_are_folded_in_only_after_new_events(shop: Runtime) -> None:
    service = shop.recommendations
    serving = service.models.serving()
    assert serving.view(service.users.get("fr1")).mode == "model"
    send(shop, [{"type": "view", "user_id": "fr1", "item_id": "c01"}])
    state = service.users.get("fr1")
    assert serving.view(state).mode == "fold-in"
    assert "c01" not in {i.item_id for i in service.for_user("fr1", k=20).items}


def test_a_person_who_only_touched_new_items_gets_content_similarity(shop: Runtime) -> None:
    send(shop, [{"type": "view", "user_id": "early-adopter", "item_id": "d99"}])
    result = shop.recommendations.for_user("early-adopter", k=3)
    assert result.model == "content" and result.personalized
    assert [genre(i.item_id) for i in result.items] == ["drama"] * 3
    assert all(i.reason == "similar to Drama brand new you viewed (content)" for i in result.items)


def test_unknown_people_get_popularity_among_people_with_their_traits(shop: Runtime) -> None:
    send(shop, [{"type": "identify", "user_id": "visitor", "traits": {"country": "US"}}])
    result = shop.recommendations.for_user("visitor", k=5)
    assert not result.personalized and result.model == "popular"
    assert [genre(i.item_id) for i in result.items] == ["comedy"] * 5
    assert all(i.reason == "popular among people like you (country=us)" for i in result.items)


def test_trait_groups_work_when_trait_values_are_sealed_at_rest(private_shop: Runtime) -> None:
    send(private_shop, [{"type": "identify", "user_id": "visitor", "traits": {"country": "US"}}])
    result = private_shop.recommendations.for_user("visitor", k=5)
    assert [genre(i.item_id) for i in result.items] == ["comedy"] * 5
    assert all(i.reason == "popular among people like you (country=us)" for i in result.items)


def test_unknown_people_get_popularity_in_their_segment_first(shop: Runtime) -> None:
    members = {f"u:fr{n}": [("drama_fans", 0.9)] for n in range(30)}
    members["u:stranger"] = [("drama_fans", 0.7)]
    shop.recommendations.segments = StaticSegments(members)
    send(shop, [{"type": "identify", "user_id": "stranger", "traits": {"country": "us"}}])
    result = shop.recommendations.for_user("stranger", k=5)
    assert not result.personalized
    assert [genre(i.item_id) for i in result.items] == ["drama"] * 5
    assert all(i.reason == "popular in segment drama_fans" for i in result.items)


def test_nobody_known_gets_overall_popularity(shop: Runtime) -> None:
    result = shop.recommendations.for_user("ghost", k=5)
    assert not result.personalized and len(result.items) == 5
    assert all(i.reason.startswith("popular: ") for i in result.items)
    assert "d19" not in {i.item_id for i in result.items}


def test_similar_items_for_new_items_come_from_content(shop: Runtime) -> None:
    answer = shop.recommendations.similar_to("c99", k=4)
    assert answer["model"] == "content"
    assert [genre(i["item_id"]) for i in answer["items"]] == ["comedy"] * 4
    assert all(
        i["reason"] == "similar content to Comedy brand new (no interactions yet)" for i in answer["items"]
    )


def test_similar_items_from_the_model_stay_in_genre(shop: Runtime) -> None:
    answer = shop.recommendations.similar_to("d03", k=5)
    assert answer["model"].endswith(":v1")
    assert [genre(i["item_id"]) for i in answer["items"]] == ["drama"] * 5
    assert all(i["reason"] == "similar to Drama 3" for i in answer["items"])
    assert not {"d03", "d19"} & {i["item_id"] for i in answer["items"]}


def test_segments_from_the_segment_engine_drive_cold_start(shop: Runtime) -> None:
    from attune.recommend.coldstart import EngineSegments

    shop.segments.apply_definitions({"francophiles": {"rule": 'trait.country == "fr"'}})
    shop.recommendations.segments = EngineSegments(shop.segments)
    send(shop, [{"type": "identify", "user_id": "newcomer", "traits": {"country": "fr"}}])
    assert [m.name for m in shop.segments.segments_of("u:newcomer")] == ["francophiles"]
    result = shop.recommendations.for_user("newcomer", k=4)
    assert [genre(i.item_id) for i in result.items] == ["drama"] * 4
    assert all(i.reason == "popular in segment francophiles" for i in result.items)
