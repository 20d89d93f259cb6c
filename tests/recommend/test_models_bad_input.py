"""Bad training data gets a clear AttuneError or a sensible answer from every model, never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from attune.errors import AttuneError, ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models import MODELS, make_model

#: Models that learn from an inner validation split need more than a handful of rows.
VALIDATED = {"rerank"}


def attributes_for(data: Interactions) -> dict[str, dict[str, object]]:
    return {str(i): {"title": f"film number {i}", "genres": ["drama"]} for i in data.item_ids}


def fit(name: str, data: Interactions):
    return make_model(name).fit(data, items=attributes_for(data))


@pytest.mark.parametrize("name", list(MODELS))
def test_empty_data_is_refused_clearly(name: str) -> None:
    with pytest.raises(ValidationFailed, match="empty interaction set"):
        fit(name, Interactions.from_arrays([], [], []))


@pytest.mark.parametrize("name", list(MODELS))
def test_nan_weights_are_refused_naming_the_row(name: str) -> None:
    data = Interactions.from_arrays(["a", "b", "c"], ["x", "y", "x"], [0, 1, 2], [1.0, np.nan, 1.0])
    with pytest.raises(
        ValidationFailed, match=r"weights: 1 interaction\(s\) have a NaN .* row 1: user 'b', item 'y'"
    ):
        fit(name, data)


@pytest.mark.parametrize("name", list(MODELS))
def test_infinite_timestamps_are_refused(name: str) -> None:
    data = Interactions.from_arrays(["a", "b"], ["x", "y"], [0.0, np.inf])
    with pytest.raises(ValidationFailed, match="timestamps: 1 interaction"):
        fit(name, data)


@pytest.mark.parametrize("name", list(MODELS))
def test_only_negative_feedback_is_refused(name: str) -> None:
    data = Interactions.from_arrays(["a", "b"], ["x", "y"], [0, 1], [-1.0, -2.0])
    with pytest.raises(ValidationFailed, match="no user has a positive interaction"):
        fit(name, data)


@pytest.mark.parametrize("name", list(MODELS))
def test_single_user(name: str) -> None:
    data = Interactions.from_arrays(["solo"] * 6, [f"i{i}" for i in range(6)], range(6))
    try:
        model = fit(name, data)
    except AttuneError as exc:
        assert name in VALIDATED and "too little" in exc.message
        return
    assert model.recommend("solo", k=3)[0] == []  # everything is seen
    assert len(model.recommend("stranger", k=3)[0]) == 3


@pytest.mark.parametrize("name", list(MODELS))
def test_single_item(name: str) -> None:
    data = Interactions.from_arrays([f"u{i}" for i in range(6)], ["only"] * 6, range(6))
    try:
        model = fit(name, data)
    except AttuneError as exc:
        assert name in VALIDATED and "too little" in exc.message
        return
    assert model.recommend("u0", k=3)[0] == []
    assert model.recommend("stranger", k=3)[0] == ["only"]


@pytest.mark.parametrize("name", list(MODELS))
def test_duplicate_laden_data(name: str) -> None:
    # Two users, two items, each pair repeated many times: duplicates are summed, not an error.
    users = ["a"] * 50 + ["b"] * 50
    items = ["x"] * 25 + ["y"] * 25 + ["x"] * 50
    data = Interactions.from_arrays(users, items, range(100))
    try:
        model = fit(name, data)
    except AttuneError as exc:
        assert name in VALIDATED and "too little" in exc.message
        return
    assert model.user_items_[model.user_index_["a"]].sum() == 50  # summed weights
    assert model.recommend("b", k=2)[0] == ["y"]


@pytest.mark.parametrize("name", list(MODELS))
def test_not_interactions_is_refused(name: str) -> None:
    with pytest.raises(ValidationFailed, match="expected Interactions"):
        make_model(name).fit([("a", "x")])  # type: ignore[arg-type]


def test_content_without_item_attributes_says_what_to_do() -> None:
    data = Interactions.from_arrays(["a", "b"], ["x", "y"], [0, 1])
    with pytest.raises(ValidationFailed, match="needs item attributes .* import items first"):
        make_model("content").fit(data)


def test_hybrid_too_small_to_validate_falls_back_to_equal_weights() -> None:
    data = Interactions.from_arrays(["a", "b"], ["x", "y"], [0, 1])
    model = make_model("hybrid", components=["ease", "popular"]).fit(data)
    assert model.weights_ == {"ease": 1.0, "popular": 1.0}
    assert "equal weights" in model.fallback_reason_
    assert model.recommend("a", k=1)[0] == ["y"]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("itemknn", {"k": 0}, "k: must be at least 1"),
        ("itemknn", {"shrinkage": -1}, "shrinkage: must not be negative"),
        ("ease", {"l2": 0}, "l2: must be positive"),
        ("trending", {"window_days": 0}, "window_days: must be positive"),
        ("popular", {"half_life_days": -3}, "half_life_days: must be positive"),
        ("hybrid", {"validation_fraction": 1.5}, "validation_fraction: must be between 0 and 1"),
        ("rerank", {"validation_fraction": 0}, "validation_fraction: must be between 0 and 1"),
        ("hybrid", {"components": ["hybrid"]}, "hybrid cannot be a component"),
        ("hybrid", {"components": ["nope"]}, "unknown model 'nope'"),
        ("rerank", {"n_candidates": 0}, "n_candidates: must be at least 1"),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(name: str, params: dict, message: str) -> None:
    data = Interactions.from_arrays(["a", "a", "b", "b", "c"], ["x", "y", "x", "z", "y"], range(5))
    with pytest.raises(ValidationFailed, match=message):
        make_model(name, **params).fit(data)
