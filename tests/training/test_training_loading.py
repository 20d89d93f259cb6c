"""Loading training data from the store, cleaning it, and refusing data nothing can learn from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from planted import START, planted_rows

from attune.errors import ValidationFailed
from attune.runtime import Runtime
from attune.settings import load_settings
from attune.training.loading import InteractionRecords, build_training_data, clean, load_training_data


def records(users, items, times, types=None, values=None) -> InteractionRecords:
    return InteractionRecords.from_columns(users, items, times, types, values)


def test_the_store_gives_subject_keys_weights_and_item_attributes(planted_runtime: Runtime) -> None:
    planted_runtime.catalog.upsert([("i00", {"title": "Zero", "genres": "a|b"})])
    data = load_training_data(planted_runtime.engine, planted_runtime.settings)
    rows = planted_rows()
    assert len(data.interactions) == len(rows)
    assert set(data.interactions.user_ids) == {f"u:{r['user_id']}" for r in rows}
    assert data.items == {"i00": {"title": "Zero", "genres": ["a", "b"]}}
    assert data.time_range == (float(rows[0]["timestamp"]), float(rows[-1]["timestamp"]))
    assert np.all(data.interactions.weights == planted_runtime.settings.recommend.event_weights["view"])


def test_a_time_range_limits_the_interactions(planted_runtime: Runtime) -> None:
    since, until = START + 60 * 10, START + 60 * 100
    data = load_training_data(planted_runtime.engine, planted_runtime.settings, since=since, until=until)
    assert len(data.interactions) == 90
    assert data.interactions.timestamps.min() >= since and data.interactions.timestamps.max() < until


def test_event_type_weights_come_from_the_settings(runtime: Runtime) -> None:
    runtime.ingest.ingest(
        [
            {"type": "purchase", "user_id": "a", "item_id": "x", "timestamp": START},
            {"type": "view", "user_id": "a", "item_id": "y", "timestamp": START + 1},
            {"type": "view", "user_id": "b", "item_id": "x", "timestamp": START + 2},
        ]
    )
    runtime.catch_up()
    data = load_training_data(runtime.engine, runtime.settings).interactions
    weight = {
        (data.user_ids[u], data.item_ids[i]): w
        for u, i, w in zip(data.users, data.items, data.weights, strict=True)
    }
    assert weight[("u:a", "x")] == runtime.settings.recommend.event_weights["purchase"]
    assert weight[("u:a", "y")] == runtime.settings.recommend.event_weights["view"]


def test_cleaning_drops_bad_times_exact_repeats_and_neutralizes_infinite_values() -> None:
    raw = records(
        ["a", "a", "a", "b", "b"],
        ["x", "x", "y", "x", "z"],
        [1.0, 1.0, math.nan, 2.0, 3.0],
        ["view"] * 5,
        [np.nan, np.nan, 1.0, math.inf, 2.0],
    )
    cleaned, notes = clean(raw)
    assert len(cleaned) == 3
    assert notes == [
        "dropped 1 interactions without a valid timestamp",
        "ignored 1 infinite values",
        "dropped 1 exact duplicate interactions",
    ]
    assert np.isnan(cleaned.values[cleaned.item_ids == "x"]).all()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (records([], [], []), "no interactions to train on"),
        (records(["a", "a", "a"], ["x", "y", "z"], [1, 2, 3]), "from 1 person only"),
        (records(["a", "b", "c"], ["x", "x", "x"], [1, 2, 3]), "name 1 item only"),
        (records(["a", "b"], ["x", "y"], [math.nan, math.inf]), "no interactions to train on"),
        (
            records(["a", "b"], ["x", "y"], [1, 2], ["dislike", "skip"]),
            "no interaction carries a positive signal",
        ),
    ],
    ids=["empty", "single-user", "single-item", "all-nan-times", "only-negative"],
)
def test_untrainable_data_gets_a_clear_message(raw: InteractionRecords, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        build_training_data(raw, load_settings())


def test_an_empty_store_says_how_to_get_data(runtime: Runtime) -> None:
    with pytest.raises(ValidationFailed, match="attune import interactions"):
        load_training_data(runtime.engine, runtime.settings)


def test_rows_keep_their_arrival_order_so_ties_in_time_split_as_they_arrived() -> None:
    # Three views in the same second arrive as z, x, y; x is seen again last.
    raw = records(["a", "a", "a", "b", "a"], ["z", "x", "y", "x", "x"], [5, 5, 5, 1, 6])
    data = build_training_data(raw, load_settings()).interactions
    order = [
        (str(data.user_ids[u]), str(data.item_ids[i])) for u, i in zip(data.users, data.items, strict=True)
    ]
    assert order == [("a", "z"), ("a", "y"), ("b", "x"), ("a", "x")]
    assert data.weights[-1] == 2 * load_settings().recommend.event_weights["view"]  # the repeat is summed
