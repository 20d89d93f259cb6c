"""The prepared serving model: exact and ANN top-k agree, ANN graphs are cached beside the artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attune.profiles.reader import Interaction
from attune.recommend.catalogview import CatalogSnapshot
from attune.recommend.data import Interactions
from attune.recommend.filters import Filters
from attune.recommend.models.ease import EASE
from attune.recommend.models.factors import ALS
from attune.recommend.scoring import ServingModel, top_indices
from attune.recommend.usercache import UserState
from attune.training.artifacts import ModelBundle


def blocks(n_users: int = 60, n_items: int = 80, seed: int = 0) -> Interactions:
    """Users of group g (user % 4) interact with items of the same group (item % 4)."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        pool = [i for i in range(n_items) if i % 4 == u % 4]
        for i in rng.choice(pool, size=8, replace=False):
            users.append(u)
            items.append(int(i))
    n = len(users)
    return Interactions(
        np.array(users),
        np.array(items),
        np.arange(n, dtype=np.float64),
        np.ones(n, dtype=np.float32),
        np.array([f"u:{u}" for u in range(n_users)]),
        np.array([f"i{i}" for i in range(n_items)]),
    )


def bundle(ann_threshold: int) -> ModelBundle:
    model = ALS(factors=8, iterations=10, ann_threshold=ann_threshold).fit(blocks())
    return ModelBundle("v1", "als", {}, model, np.array(["i0"]), np.array([1.0]))


def state_of(key: str, items: list[str]) -> UserState:
    events = tuple(Interaction(i, "view", 0.0, None) for i in items)
    return UserState(key[2:], key, True, {}, events, tuple(items), frozenset(items), 0.0)


def empty_catalog() -> CatalogSnapshot:
    return CatalogSnapshot(1, {}, {}, frozenset())


def test_ann_and_exact_scoring_give_the_same_top_k(tmp_path: Path) -> None:
    exact = ServingModel(bundle(ann_threshold=10**9))
    approximate = ServingModel(bundle(ann_threshold=10))
    assert approximate.wants_ann and not approximate.use_ann
    approximate.build_ann(tmp_path, "t")
    assert approximate.use_ann
    catalog = CatalogSnapshot(1, {"i48": {"available": False}}, {}, frozenset({"i48"}))
    for user in ("u:0", "u:5", "u:22"):
        group = int(user[2:]) % 4
        history = [f"i{i}" for i in range(group, 80, 4)][1:9]
        answers = []
        for serving in (exact, approximate):
            idx, _ = serving.rank(serving.view(state_of(user, history)), 6, Filters(exclude=frozenset({"i44"})), catalog)
            answers.append([serving.item_ids[j] for j in idx])
        assert answers[0] == answers[1]
        assert len(answers[0]) == 6
        assert all(int(i[1:]) % 4 == group for i in answers[0])
        assert not set(answers[0]) & {*history, "i44", "i48"}


def test_built_graphs_are_saved_and_reused(tmp_path: Path) -> None:
    first = ServingModel(bundle(ann_threshold=10))
    first.build_ann(tmp_path, "t")
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["serving-ann-score-t.usearch", "serving-ann-similar-t.usearch"]
    stamps = [p.stat().st_mtime_ns for p in sorted(tmp_path.iterdir())]
    second = ServingModel(bundle(ann_threshold=10))
    second.build_ann(tmp_path, "t")
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.iterdir())] == stamps  # read, not rewritten
    keys, _ = second.model._index("score").search(second.vectors[3], 5)
    assert len(keys[0]) == 5 and (keys[0] >= 0).all()


def test_a_damaged_graph_file_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "serving-ann-score-t.usearch").write_bytes(b"not a graph")
    serving = ServingModel(bundle(ann_threshold=10))
    serving.build_ann(tmp_path, "t")
    assert serving.use_ann


@pytest.mark.parametrize("count", [0, 1, 5, 80, 200])
def test_top_indices_skips_blocked_and_orders_best_first(count: int) -> None:
    rng = np.random.default_rng(count)
    scores = rng.normal(size=80).astype(np.float32)
    scores[::3] = -np.inf
    picked = top_indices(scores, count)
    finite = np.flatnonzero(np.isfinite(scores))
    expected = finite[np.argsort(-scores[finite], kind="stable")][:count]
    assert picked.tolist() == expected.tolist()


def drifting(n_users: int = 80, n_items: int = 60, seed: int = 1) -> Interactions:
    """Each user's taste moves from one item group (item % 3) to the next over time."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(n_users):
        old, new = u % 3, (u + 1) % 3
        for t, group in enumerate([old] * 6 + [new] * 3):
            users.append(u)
            items.append(int(rng.choice([i for i in range(n_items) if i % 3 == group])))
            times.append(float(t))
    n = len(users)
    return Interactions(
        np.array(users),
        np.array(items),
        np.array(times),
        np.ones(n, dtype=np.float32),
        np.array([f"u:{u}" for u in range(n_users)]),
        np.array([f"i{i}" for i in range(n_items)]),
    )


def test_serving_weighs_history_by_recency_as_the_model_does() -> None:
    data = drifting()
    model = EASE(l2=10.0, recency_tau=1.0).fit(data)
    serving = ServingModel(ModelBundle("v1", "ease", {}, model, np.array(["i0"]), np.array([1.0])))
    differs = 0
    for u in range(0, 80, 7):
        key = f"u:{u}"
        history = [str(data.item_ids[i]) for i in data.items[data.users == u]]
        idx, _ = serving.rank(serving.view(state_of(key, history)), 5, Filters(), empty_catalog())
        expected, _ = model.recommend(key, 5)
        assert [serving.item_ids[j] for j in idx] == list(expected)
        unweighted = np.asarray(model.score_rows(model.user_row(key))[0]).copy()
        unweighted[[model.item_index_[i] for i in set(history)]] = -np.inf
        differs += set(model.item_ids_[np.argsort(-unweighted)[:5]]) != set(expected)
    assert differs > 0  # recency changes some answers, so the check above is not vacuous
