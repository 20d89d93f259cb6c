"""The estimator API on every model, with checkerboard data whose answer is known."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models import MODELS, make_model
from attune.recommend.models.base import NotFittedError, UnknownItem, blocked_entries, top_k
from attune.recommend.models.ease import EASE
from attune.recommend.models.synthetic import checkerboard, held_out_item

#: Small, fast settings; every personalized model must solve the checkerboard with them.
FAST = {
    "popular": {},
    "trending": {},
    "itemknn": {"k": 10},
    "ease": {"l2": 1.0},
    "als": {"factors": 4, "iterations": 10, "regularization": 0.01},
    "bpr": {"factors": 8, "iterations": 60, "learning_rate": 0.05},
    "hybrid": {"components": ["ease", "itemknn"], "validation_fraction": 0.3},
    "rerank": {
        "components": {"ease": {"l2": 1.0}, "itemknn": {"k": 10}},
        "n_estimators": 20,
        "min_child_samples": 1,
        "validation_fraction": 0.3,
    },
}
#: Parity as an item attribute, so the content model can solve the checkerboard too.
ITEMS = {f"i{i:02d}": {"parity": "even" if i % 2 == 0 else "odd"} for i in range(20)}
COLLABORATIVE = [n for n in MODELS if MODELS[n].personalized and n != "content"]


def fitted(name: str):
    return make_model(name, **FAST.get(name, {})).fit(checkerboard(), items=ITEMS)


@pytest.mark.parametrize("name", list(MODELS))
def test_calling_before_fit_is_a_clear_error(name: str) -> None:
    model = make_model(name)
    with pytest.raises(NotFittedError, match=f"the {name} model is not trained yet: call fit"):
        model.recommend("u00")
    with pytest.raises(NotFittedError):
        model.similar_items("i00")
    assert not model.is_fitted


@pytest.mark.parametrize("name", [*COLLABORATIVE, "content"])
def test_personalized_models_recover_the_checkerboard(name: str) -> None:
    model = fitted(name)
    for user in (0, 1):
        ids, scores = model.recommend(f"u{user:02d}", k=3)
        assert ids[0] == held_out_item(user), (name, ids)
        assert list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_learned_state_ends_in_underscore_and_params_are_init_args(name: str) -> None:
    model = make_model(name)
    before = dict(vars(model))
    assert set(before) == set(model.get_params())  # __init__ stores hyper-parameters only
    model = fitted(name)
    learned = set(vars(model)) - set(before)
    assert learned and all(attr.endswith("_") for attr in learned), learned


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_matches_single(name: str) -> None:
    model = fitted(name)
    users = ["u00", "u01", "u07", "stranger"]
    batch_ids, batch_scores = model.recommend_batch(users, k=4)
    for user, ids, scores in zip(users, batch_ids, batch_scores, strict=True):
        single_ids, single_scores = model.recommend(user, k=4)
        assert ids == single_ids
        np.testing.assert_allclose(scores[: len(ids)], single_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", [*COLLABORATIVE, "content"])
def test_fold_in_of_a_new_users_first_events(name: str) -> None:
    model = fitted(name)
    ids, _ = model.recommend("newcomer", k=3, extra_items=["i01", "i03", "i05", "i07"])
    assert ids and all(int(i[1:]) % 2 == 1 for i in ids), ids
    assert not {"i01", "i03", "i05", "i07"} & set(ids)  # just consumed: excluded


def test_fold_in_updates_a_known_user() -> None:
    model = fitted("ease")
    ids, _ = model.recommend("u00", k=2, extra_items=["i18"])
    assert "i18" not in ids


@pytest.mark.parametrize("name", list(MODELS))
def test_seen_items_are_excluded_unless_asked(name: str) -> None:
    model = fitted(name)
    seen = {f"i{i:02d}" for i in range(0, 18, 2)}
    assert not seen & set(model.recommend("u00", k=20)[0])
    assert seen <= set(model.recommend("u00", k=20, exclude_seen=False)[0]) or name == "rerank"


def test_candidates_restrict_the_answer() -> None:
    model = fitted("ease")
    ids, _ = model.recommend("u00", k=5, candidates=["i01", "i03", "nope"])
    assert set(ids) == {"i01", "i03"}


@pytest.mark.parametrize("name", [*COLLABORATIVE, "content"])
def test_similar_items_share_the_parity(name: str) -> None:
    model = fitted(name)
    ids, scores = model.similar_items("i04", k=3)
    assert ids and "i04" not in ids
    assert all(int(i[1:]) % 2 == 0 for i in ids), ids
    assert list(scores) == sorted(scores, reverse=True)


def test_similar_items_of_an_unknown_item_is_a_clear_404() -> None:
    model = fitted("ease")
    with pytest.raises(UnknownItem, match="'nope' is unknown to the ease model") as info:
        model.similar_items("nope")
    assert info.value.status == 404


@pytest.mark.parametrize("name", list(MODELS))
def test_models_survive_pickling(name: str) -> None:
    model = fitted(name)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.recommend("u00", k=3)[0] == model.recommend("u00", k=3)[0]


def test_rows_with_the_wrong_width_are_refused() -> None:
    model = fitted("ease")
    import scipy.sparse as sp

    with pytest.raises(ValidationFailed, match="columns"):
        model.recommend_rows(sp.csr_matrix((1, 3)), 2)


def test_negatively_rated_items_are_never_recommended() -> None:
    data = checkerboard()
    # u02 dislikes i18 (an item of its parity it has not otherwise seen): pass it via extra_items.
    model = EASE(l2=1.0).fit(data)
    ids, _ = model.recommend("newcomer", k=20, exclude_seen=False, extra_items={"i00": 1.0, "i18": -1.0})
    assert "i18" not in ids and "i00" in ids


def test_blocked_entries_use_structure_not_values() -> None:
    import scipy.sparse as sp

    rows = sp.csr_matrix(
        (np.array([0.0, -1.0, 2.0]), (np.array([0, 0, 1]), np.array([0, 1, 2]))), shape=(2, 3)
    )
    r, c = blocked_entries(rows, exclude_seen=True)
    assert set(zip(r.tolist(), c.tolist(), strict=True)) == {(0, 0), (0, 1), (1, 2)}
    r, c = blocked_entries(rows, exclude_seen=False)
    assert set(zip(r.tolist(), c.tolist(), strict=True)) == {(0, 1)}


def test_top_k_drops_excluded_items_and_orders_by_score() -> None:
    scores = np.array([[0.1, -np.inf, 0.9, 0.5]])
    ids, best = top_k(scores, 4, np.array(["a", "b", "c", "d"]))
    assert ids == [["c", "d", "a"]]
    assert best[0][0] == 0.9


def test_top_k_breaks_ties_by_item_order() -> None:
    ids, _ = top_k(np.zeros((1, 5)), 3, np.array(["a", "b", "c", "d", "e"]))
    assert ids == [["a", "b", "c"]]


def test_refit_replaces_the_learned_state() -> None:
    model = EASE(l2=1.0).fit(checkerboard())
    other = Interactions.from_arrays(["x", "x", "y"], ["a", "b", "a"], [1, 2, 3])
    model.fit(other)
    assert list(model.item_ids_) == ["a", "b"]
    assert model.recommend("y", k=1)[0] == ["b"]
