"""Content-based model: attribute vectors, profiles, cold items, negatives."""

from __future__ import annotations

import numpy as np
import pytest

from attune.recommend.data import Interactions
from attune.recommend.models import ContentBased
from attune.recommend.models.content import item_feature_matrix

ITEMS = {
    "d1": {"title": "A quiet family drama", "category": "drama", "price": 10.0},
    "d2": {"title": "Another family drama at sea", "category": "drama", "price": 12.0},
    "d3": {"title": "Family drama in winter", "category": "drama", "price": 11.0},
    "h1": {"title": "Screaming horror night", "category": "horror", "price": 30.0},
    "h2": {"title": "Horror at the old house", "category": "horror", "price": 31.0},
    "h3": {"title": "The horror returns", "category": "horror", "price": 29.0},
    "cold_drama": {"title": "A brand new family drama", "category": "drama", "price": 10.5},
}


def data() -> Interactions:
    pairs = [("ann", "d1"), ("ann", "d2"), ("bob", "h1"), ("bob", "h2"), ("cat", "d3"), ("cat", "h3")]
    return Interactions.from_arrays([p[0] for p in pairs], [p[1] for p in pairs], range(len(pairs)))


def test_profile_finds_same_category_items_including_cold_ones() -> None:
    model = ContentBased().fit(data(), items=ITEMS)
    assert "cold_drama" in model.item_index_  # no interactions, still in the vocabulary
    ids, _ = model.recommend("ann", k=2)
    assert set(ids) == {"d3", "cold_drama"}
    ids, _ = model.recommend("bob", k=1)
    assert ids == ["h3"]


def test_new_item_similarity() -> None:
    model = ContentBased().fit(data(), items=ITEMS)
    ids, scores = model.similar_items("cold_drama", k=3)
    assert set(ids) == {"d1", "d2", "d3"}
    assert scores[0] > 0.5


def test_disliking_an_item_pushes_similar_items_down() -> None:
    model = ContentBased().fit(data(), items=ITEMS)
    plain = model.recommend("new", k=7, extra_items={"d1": 1.0, "h1": 1.0})[0]
    disliking = model.recommend("new", k=7, extra_items={"d1": 1.0, "h1": 1.0, "h2": -1.0})[0]
    assert plain.index("h3") < len(plain) - 1
    assert disliking.index("h3") > disliking.index("d2") and disliking[-1] == "h3"


def test_feature_kinds_and_weights() -> None:
    items = {
        "a": {"title": "red apple pie", "genres": ["food", "sweet"], "price": 1.0, "available": True},
        "b": {"title": "green apple", "genres": "food|sour", "price": 3.0},
        "c": {"title": "steel bolt", "genres": ["tools"]},
    }
    only_genres = item_feature_matrix(["a", "b", "c"], items, weights=(0.0, 1.0, 0.0)).toarray()
    assert only_genres.shape[1] == 4  # food, sweet, sour, tools (availability is not content)
    sims = only_genres @ only_genres.T
    assert sims[0, 1] == pytest.approx(0.5) and sims[0, 2] == 0
    text = item_feature_matrix(["a", "b", "c"], items, weights=(1.0, 0.0, 0.0)).toarray()
    assert (text @ text.T)[0, 1] > 0 and (text @ text.T)[0, 2] == 0
    numbers = item_feature_matrix(["a", "b", "c"], items, weights=(0.0, 0.0, 1.0)).toarray()
    assert numbers.shape[1] == 1 and numbers[2, 0] == 0  # missing price -> the average item
    unknown = item_feature_matrix(["zzz"], items).toarray()
    assert not unknown.any()


def test_explicit_text_fields() -> None:
    items = {"a": {"code": "x1", "blurb": "x1"}, "b": {"code": "x1", "blurb": "zz"}}
    matrix = item_feature_matrix(["a", "b"], items, text_fields=["blurb"], weights=(1.0, 0.0, 0.0))
    assert matrix.shape[1] == 2  # the blurb words only


def test_items_without_usable_attributes_are_refused() -> None:
    from attune.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="no usable item attributes"):
        ContentBased().fit(data(), items={"d1": {"available": True}})


def test_scores_are_cosines() -> None:
    model = ContentBased().fit(data(), items=ITEMS)
    scores = model.score_rows(model.rows_for(["ann"]))[0]
    assert np.all(scores <= 1 + 1e-6) and np.all(scores >= -1 - 1e-6)
