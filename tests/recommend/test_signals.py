"""Raw interaction records to weighted Interactions: event weights, ratings, decay, negatives."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from attune.errors import ValidationFailed
from attune.recommend.models import EASE, ItemKNN, Popularity
from attune.recommend.signals import (
    DEFAULT_EVENT_WEIGHTS,
    SignalConfig,
    build_interactions,
    from_records,
    to_interactions,
)

DAY = 86_400.0


def weight_of(data, user: str, item: str) -> float:
    u, i = list(data.user_ids).index(user), list(data.item_ids).index(item)
    mask = (data.users == u) & (data.items == i)
    return float(data.weights[mask].sum())


def test_default_weights_order_the_event_types() -> None:
    w = DEFAULT_EVENT_WEIGHTS
    assert w["purchase"] > w["add_to_cart"] > w["click"] > w["view"] > 0
    assert w["dislike"] < 0 and w["skip"] < 0 and w["remove_from_cart"] < 0


def test_event_types_weigh_and_duplicates_are_summed() -> None:
    data = build_interactions(
        ["a", "a", "a", "b", "b"],
        ["x", "x", "y", "x", "z"],
        ["view", "purchase", "click", "view", "view"],
        [1, 5, 3, 2, 9],
    )
    assert len(data) == 4  # (a, x) twice -> one interaction
    assert weight_of(data, "a", "x") == pytest.approx(1 + 8)
    assert weight_of(data, "a", "y") == pytest.approx(2)
    a, x = list(data.user_ids).index("a"), list(data.item_ids).index("x")
    assert data.timestamps[(data.users == a) & (data.items == x)][0] == 5  # the newest


def test_custom_weights_merge_over_defaults_and_unknown_types() -> None:
    config = SignalConfig(event_weights={"view": 0.25, "wishlist": 5.0}, default_weight=None)
    data = build_interactions(
        ["a", "a", "a", "a"],
        ["w", "x", "y", "z"],
        ["view", "wishlist", "purchase", "odd"],
        [1, 2, 3, 4],
        config=config,
    )
    assert weight_of(data, "a", "w") == pytest.approx(0.25)
    assert weight_of(data, "a", "x") == pytest.approx(5.0)
    assert weight_of(data, "a", "y") == pytest.approx(8.0)
    assert "z" not in list(data.item_ids)  # unknown type dropped when default_weight is None
    assert weight_of(build_interactions(["a"], ["z"], ["odd"], [1]), "a", "z") == pytest.approx(1.0)


def test_ratings_weigh_by_value() -> None:
    data = build_interactions(
        ["a"] * 6,
        ["r5", "r4", "r3", "r1", "mid", "none"],
        ["rating"] * 6,
        range(6),
        [5, 4, 3, 1, 2.5, np.nan],
    )
    w = {i: weight_of(data, "a", i) for i in ["r5", "r4", "r3", "r1", "mid", "none"]}
    assert w["r5"] == pytest.approx(3.0) and w["r4"] == pytest.approx(1.8) and w["r3"] == pytest.approx(0.6)
    assert w["r1"] == pytest.approx(-1.8)  # a bad rating is negative feedback
    assert w["mid"] == 0 and "mid" in list(data.item_ids)  # neutral: kept as seen, no signal
    assert w["none"] == pytest.approx(3.0)  # a rating without value counts as the rating weight
    assert weight_of(build_interactions(["a"], ["x"], ["view"], [0], [1.0]), "a", "x") == 1.0  # value ignored


def test_time_decay_from_the_newest_timestamp() -> None:
    config = SignalConfig(half_life_days=7)
    data = build_interactions(
        ["a", "b"], ["old", "new"], ["purchase", "purchase"], [0.0, 14 * DAY], config=config
    )
    assert weight_of(data, "a", "old") == pytest.approx(8 * 0.25)
    assert weight_of(data, "b", "new") == pytest.approx(8)


def test_decay_makes_popularity_prefer_recent_items() -> None:
    users = [f"u{n}" for n in range(5)]
    times = [0.0, 0.0, 0.0, 30 * DAY, 30 * DAY]
    items = ["old", "old", "old", "new", "new"]
    plain = build_interactions(users, items, ["view"] * 5, times)
    decayed = build_interactions(users, items, ["view"] * 5, times, config=SignalConfig(half_life_days=5))
    assert Popularity(weighted=True).fit(plain).recommend("z", k=1)[0] == ["old"]
    assert Popularity(weighted=True).fit(decayed).recommend("z", k=1)[0] == ["new"]


def test_negative_feedback_pushes_an_item_down() -> None:
    # y goes with a more than x does, so a fan of a gets y first; but y also goes with t,
    # and once the user dislikes t, y drops below x.
    users, items, types = [], [], []

    def add(user: str, item: str, kind: str) -> None:
        users.append(user), items.append(item), types.append(kind)

    for n in range(6):
        add(f"p{n}", "a", "purchase"), add(f"p{n}", "y", "purchase")
        if n < 3:
            add(f"p{n}", "x", "purchase")
    for n in range(2):
        add(f"q{n}", "t", "view"), add(f"q{n}", "y", "view")
    for n in range(3):
        add(f"r{n}", "x", "view"), add(f"r{n}", "b", "view")
    add("me", "a", "purchase")
    liking = build_interactions(users, items, types, range(len(users)))
    add("me", "t", "dislike")
    disliking = build_interactions(users, items, types, range(len(users)))
    assert weight_of(disliking, "me", "t") < 0
    for model in (ItemKNN(k=10, shrinkage=0), EASE(l2=0.5)):
        before, _ = model.fit(liking).recommend("me", k=2)
        assert before == ["y", "x"], (model.name, before)
        after, _ = model.fit(disliking).recommend("me", k=5, exclude_seen=False)
        assert "t" not in after  # never recommend what the user disliked
        assert after.index("x") < after.index("y"), (model.name, after)


def test_nan_and_inf_are_refused_with_their_rows() -> None:
    with pytest.raises(
        ValidationFailed, match=r"timestamp: 1 row\(s\) where it is NaN or infinite \(rows 1\)"
    ):
        build_interactions(["a", "b"], ["x", "y"], ["view", "view"], [0.0, np.nan])
    with pytest.raises(ValidationFailed, match=r"value: 1 row\(s\) where it is infinite \(rows 0\)"):
        build_interactions(["a"], ["x"], ["rating"], [0.0], [np.inf])
    with pytest.raises(ValidationFailed, match="event_weights.view: must be a finite number"):
        build_interactions(["a"], ["x"], ["view"], [0.0], config=SignalConfig(event_weights={"view": np.nan}))
    with pytest.raises(ValidationFailed, match="columns differ in length"):
        build_interactions(["a", "b"], ["x"], ["view"], [0.0])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SignalConfig(half_life_days=0), "half_life_days: must be a positive number"),
        (SignalConfig(rating_scale=0), "rating_scale: must be a positive number"),
        (SignalConfig(default_weight=float("inf")), "default_weight: must be a finite number"),
    ],
)
def test_bad_configuration_is_refused(config: SignalConfig, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        build_interactions(["a"], ["x"], ["view"], [0.0], config=config)


def test_from_records_names_each_bad_record() -> None:
    good = {"user_id": "a", "item_id": "x", "timestamp": 1, "type": "click"}
    data = from_records([good, {"user_id": "b", "item_id": "y", "timestamp": "2"}])
    assert weight_of(data, "a", "x") == 2.0 and weight_of(data, "b", "y") == 1.0  # type defaults to view
    bad = [
        good,
        {"user_id": "", "item_id": "x", "timestamp": 1},
        {"user_id": "a", "item_id": "x", "timestamp": float("nan")},
        {"user_id": "a", "item_id": "x", "timestamp": 1, "value": float("inf")},
    ]
    with pytest.raises(ValidationFailed) as info:
        from_records(bad)
    assert info.value.errors == [
        "record 1: user_id: is required",
        "record 2: timestamp: must be a finite number (epoch seconds)",
        "record 3: value: must be a finite number",
    ]


def test_to_interactions_reads_column_records_and_settings() -> None:
    records = SimpleNamespace(
        user_keys=np.array(["u:a", "u:a"]),
        item_ids=np.array(["x", "y"]),
        types=np.array(["view", "dislike"], dtype=object),
        timestamps=np.array([1.0, 2.0]),
        values=np.array([np.nan, np.nan]),
    )
    settings = SimpleNamespace(event_weights={"view": 2.0}, popularity_half_life_days=14.0)
    data = to_interactions(records, settings)
    assert weight_of(data, "u:a", "x") == 2.0  # from the settings
    assert weight_of(data, "u:a", "y") == DEFAULT_EVENT_WEIGHTS["dislike"]  # defaults fill the rest
    assert to_interactions(records).weights.tolist() == [1.0, -4.0]


def test_no_aggregation_keeps_every_record() -> None:
    data = build_interactions(
        ["a", "a"], ["x", "x"], ["view", "view"], [1, 2], config=SignalConfig(aggregate=False)
    )
    assert len(data) == 2 and data.matrix(binary=False)[0, 0] == 2.0


def test_empty_input_gives_empty_interactions() -> None:
    assert len(build_interactions([], [], [], [])) == 0
