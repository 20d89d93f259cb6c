"""Recency-weighted scoring rows: ranks kept at fit, fold-in as newest, the weighting, tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models import SWITCHES, make_model, search_space
from attune.recommend.models.base import recency_ranks, recency_weighted

RECENCY_MODELS = ("ease", "itemknn", "als", "bpr")


GROUPS = "abcd"


def drifting_taste(n_steady: int = 80, n_drifters: int = 20, seed: int = 0) -> Interactions:
    """Four taste groups of 20 items ("a00".."d19"). Steady users ("s…") consume 8 items of one
    group, which makes items of a group co-occur. Drifters ("d…") consume 6 items of group ``g``,
    then 6 of group ``g + 1``: half their history each, but the newest group is what they like now.
    """
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []

    def consume(user: str, groups: list[str], per_group: int) -> None:
        t = 0
        for group in groups:
            for i in rng.choice(20, size=per_group, replace=False):
                users.append(user)
                items.append(f"{group}{int(i):02d}")
                times.append(1_000 * len(users) + t)
                t += 1

    for u in range(n_steady):
        consume(f"s{u:03d}", [GROUPS[u % 4]], 8)
    for u in range(n_drifters):
        consume(f"d{u:03d}", [GROUPS[u % 4], GROUPS[(u + 1) % 4]], 6)
    return Interactions.from_arrays(users, items, times)


def newest_group(user: str) -> str:
    """The group a drifter moved to."""
    return GROUPS[(int(user[1:]) + 1) % 4]


def drifters(data: Interactions) -> list[str]:
    """The drifting users' ids."""
    return [str(u) for u in data.user_ids if str(u).startswith("d")]


def test_ranks_count_from_the_newest_item_by_its_latest_interaction() -> None:
    data = Interactions.from_arrays(
        ["u", "u", "u", "u", "v"],
        ["x", "y", "x", "z", "x"],
        [10.0, 20.0, 30.0, 30.0, 5.0],
    )
    ranks = recency_ranks(data).toarray()
    col = {str(i): n for n, i in enumerate(data.item_ids)}
    u = ranks[list(data.user_ids).index("u")]
    # x was seen again at t=30 (tied with z, which comes later in the input and so counts newer).
    assert (u[col["z"]], u[col["x"]], u[col["y"]]) == (1.0, 2.0, 3.0)
    assert ranks[list(data.user_ids).index("v"), col["x"]] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(0, 20)), min_size=1, max_size=60))
def test_ranks_are_a_permutation_aligned_with_the_interaction_matrix(
    rows: list[tuple[int, int, int]],
) -> None:
    users, items, times = zip(*rows, strict=True)
    data = Interactions.from_arrays(users, items, times)
    ranks = recency_ranks(data)
    matrix = data.matrix()
    assert np.array_equal((ranks != 0).toarray(), (matrix != 0).toarray())
    for u in range(data.n_users):
        row = ranks[u]
        assert sorted(row.data.tolist()) == list(range(1, row.nnz + 1))
        if row.nnz:
            mine = data.users == u
            newest_time = data.timestamps[mine].max()
            newest_items = set(data.items[mine][data.timestamps[mine] == newest_time].tolist())
            assert int(row.indices[row.data == 1.0][0]) in newest_items


def test_weighting_is_exponential_in_the_rank_and_leaves_unranked_entries_alone() -> None:
    rows = sp.csr_matrix(np.array([[1.0, -1.0, 2.0, 1.0]], dtype=np.float32))
    ranks = sp.csr_matrix(np.array([[1.0, 2.0, 3.0, 0.0]], dtype=np.float32))  # last: order unknown
    weighted = recency_weighted(rows, ranks, 2.0).toarray()[0]
    assert weighted == pytest.approx([1.0, -math.exp(-0.5), 2 * math.exp(-1.0), 1.0], rel=1e-6)
    assert recency_weighted(rows, ranks, None) is rows
    assert recency_weighted(rows, None, 2.0) is rows


@pytest.mark.parametrize("name", RECENCY_MODELS)
def test_recency_recommends_the_newest_taste(name: str) -> None:
    data = drifting_taste()
    params = {"num_threads": 1} if name in ("als", "bpr") else {}
    plain = make_model(name, **params).fit(data)
    recent = make_model(name, recency_tau=2.0, **params).fit(data)
    users = drifters(data)

    def share_of_newest(model) -> float:
        ids, _ = model.recommend_batch(users, k=5)
        return float(
            np.mean([[i[0] == newest_group(u) for i in row] for row, u in zip(ids, users, strict=True)])
        )

    assert share_of_newest(recent) > 0.9
    assert share_of_newest(recent) > share_of_newest(plain) + 0.2


def test_content_profile_follows_the_newest_items() -> None:
    data = drifting_taste()
    items = {str(i): {"genres": [str(i)[0]]} for i in data.item_ids}
    model = make_model("content", recency_tau=2.0).fit(data, items=items)
    for user in drifters(data)[:4]:
        ids, _ = model.recommend(user, k=5)
        assert all(i[0] == newest_group(user) for i in ids)


@pytest.mark.parametrize("name", RECENCY_MODELS)
def test_one_user_and_the_batch_agree(name: str) -> None:
    data = drifting_taste()
    model = make_model(name, recency_tau=3.0, **({"num_threads": 1} if name in ("als", "bpr") else {})).fit(
        data
    )
    users = drifters(data)[:6] + [str(u) for u in data.user_ids[:4]]
    batch_ids, _ = model.recommend_batch(users, k=8)
    for user, expected in zip(users, batch_ids, strict=True):
        assert model.recommend(user, k=8)[0] == expected


def test_fold_in_items_are_the_newest() -> None:
    data = drifting_taste()
    model = make_model("ease", recency_tau=2.0).fit(data)
    # d000 went a -> b; six fresh "c" items make c the newest taste.
    fresh = [f"c{i:02d}" for i in range(6)]
    ranks = model.user_ranks("d000", fresh).toarray()[0]
    index = model.item_index_
    assert [ranks[index[i]] for i in reversed(fresh)] == [1, 2, 3, 4, 5, 6]
    stored = model.ranks_for(["d000"]).toarray()[0]
    older = [j for j in np.flatnonzero(stored) if str(model.item_ids_[j]) not in fresh]
    assert sorted(ranks[older].tolist()) == list(range(7, 7 + len(older)))
    ids, _ = model.recommend("d000", k=5, extra_items=fresh)
    assert all(i.startswith("c") for i in ids)


def test_a_fresh_item_already_seen_takes_its_fresh_position() -> None:
    data = drifting_taste()
    model = make_model("ease").fit(data)
    stored = model.ranks_for(["d000"]).toarray()[0]
    oldest = str(model.item_ids_[int(np.argmax(stored))])
    ranks = model.user_ranks("d000", [oldest]).toarray()[0]
    assert ranks[model.item_index_[oldest]] == 1
    assert sorted(ranks[ranks > 0].tolist()) == list(range(1, int((stored > 0).sum()) + 1))


def test_unknown_users_rank_only_their_fresh_items() -> None:
    model = make_model("ease").fit(drifting_taste())
    ranks = model.user_ranks("nobody", ["a01", "b02", "a01", "zzz"]).toarray()[0]
    index = model.item_index_
    assert (ranks[index["a01"]], ranks[index["b02"]]) == (1, 2)  # a01 again last: newest
    assert (ranks > 0).sum() == 2


def test_rows_without_ranks_are_scored_unweighted() -> None:
    data = drifting_taste()
    plain = make_model("ease").fit(data)
    recent = make_model("ease", recency_tau=2.0).fit(data)
    rows = plain.rows_for(["d000", "d001"])
    assert np.allclose(recent.score_rows(rows), plain.score_rows(rows))
    assert not np.allclose(
        recent.score_rows(rows, recent.ranks_for(["d000", "d001"])), plain.score_rows(rows)
    )


def test_ranks_of_the_wrong_shape_are_refused() -> None:
    model = make_model("ease", recency_tau=2.0).fit(drifting_taste())
    rows = model.rows_for(["d000"])
    with pytest.raises(ValidationFailed, match="ranks: shape"):
        model.score_rows(rows, sp.csr_matrix((2, rows.shape[1])))


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), "soon"])
@pytest.mark.parametrize("name", [*RECENCY_MODELS, "content"])
def test_a_bad_time_constant_is_refused_by_name(name: str, tau: object) -> None:
    data = drifting_taste()
    items = {str(i): {"genres": [str(i)[0]]} for i in data.item_ids}
    with pytest.raises(ValidationFailed, match="recency_tau"):
        make_model(name, recency_tau=tau).fit(data, items=items)


def test_ensembles_hand_the_ranks_to_their_components() -> None:
    data = drifting_taste()
    component = make_model("ease", recency_tau=2.0).fit(data)
    hybrid = make_model("hybrid", components={"ease": {"recency_tau": 2.0}}, weights={"ease": 1.0}).fit(data)
    users = [str(u) for u in data.user_ids]
    assert hybrid.recommend_batch(users, k=5)[0] == component.recommend_batch(users, k=5)[0]
    users = drifters(data)
    rerank = make_model(
        "rerank", components={"ease": {"recency_tau": 2.0}, "popular": {}}, n_estimators=20
    ).fit(data)
    ids, _ = rerank.recommend_batch(users, k=3)
    assert np.mean([row[0][0] == newest_group(u) for row, u in zip(ids, users, strict=True)]) > 0.9


class Fixed:
    """A stand-in Optuna trial answering from a dict (the low end otherwise)."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    def suggest_categorical(self, name: str, choices: list[object]) -> object:
        return self.answers.get(name, choices[0])

    def suggest_float(self, name: str, low: float, high: float, **_: object) -> float:
        return float(self.answers.get(name, low))  # type: ignore[arg-type]

    def suggest_int(self, name: str, low: int, high: int, **_: object) -> int:
        return int(self.answers.get(name, low))  # type: ignore[call-overload]


@pytest.mark.parametrize("name", [*RECENCY_MODELS, "content"])
def test_the_search_space_switches_recency_on_and_off(name: str) -> None:
    assert search_space(name, Fixed({f"{name}.recency": False}))["recency_tau"] is None
    on = search_space(name, Fixed({f"{name}.recency": True, f"{name}.recency_tau": 25.0}))
    assert on["recency_tau"] == 25.0
    assert SWITCHES["recency"] == "recency_tau"
