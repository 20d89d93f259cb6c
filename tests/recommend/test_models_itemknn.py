"""Item kNN: shrunk cosine values, top-k pruning and signed scoring."""

from __future__ import annotations

import numpy as np
import pytest

from attune.recommend.data import Interactions
from attune.recommend.models import ItemKNN


def small() -> Interactions:
    # x: users a,b,c; y: a,b; z: c,d.  |x∩y| = 2, |x∩z| = 1, |y∩z| = 0.
    pairs = [("a", "x"), ("b", "x"), ("c", "x"), ("a", "y"), ("b", "y"), ("c", "z"), ("d", "z")]
    return Interactions.from_arrays([p[0] for p in pairs], [p[1] for p in pairs], range(len(pairs)))


@pytest.mark.parametrize("shrinkage", [0.0, 5.0])
def test_similarity_is_shrunk_cosine(shrinkage: float) -> None:
    model = ItemKNN(k=5, shrinkage=shrinkage).fit(small())
    sim = model.similarity_.toarray()
    x, y, z = (list(model.item_ids_).index(i) for i in "xyz")
    np.testing.assert_allclose(sim[x, y], 2 / (np.sqrt(3 * 2) + shrinkage), rtol=1e-5)
    np.testing.assert_allclose(sim[x, z], 1 / (np.sqrt(3 * 2) + shrinkage), rtol=1e-5)
    assert sim[y, z] == 0 and sim[x, x] == 0


def test_only_the_k_nearest_neighbours_are_kept() -> None:
    model = ItemKNN(k=1, shrinkage=0).fit(small())
    assert (np.diff(model.similarity_.indptr) <= 1).all()
    assert model.similar_items("x", k=5)[0] == ["y"]  # only its nearest neighbour remains


def test_negative_feedback_pushes_neighbours_down() -> None:
    # w is liked together with v and with u; the user likes v but dislikes u's twin t.
    pairs = [(f"p{n}", "v") for n in range(5)] + [(f"p{n}", "w") for n in range(5)]
    pairs += (
        [(f"q{n}", "t") for n in range(5)]
        + [(f"q{n}", "w") for n in range(3)]
        + [(f"q{n}", "s") for n in range(5)]
    )
    data = Interactions.from_arrays([p[0] for p in pairs], [p[1] for p in pairs], range(len(pairs)))
    model = ItemKNN(k=10, shrinkage=0).fit(data)
    liked_only, _ = model.recommend("new", k=2, extra_items={"v": 1.0, "s": 1.0})
    assert liked_only[0] == "w"
    with_dislike, scores = model.recommend("new", k=3, extra_items={"v": 1.0, "s": 1.0, "t": -1.0})
    assert "t" not in with_dislike
    w_score = dict(zip(with_dislike, scores, strict=True)).get("w", -np.inf)
    assert w_score < dict(zip(liked_only, _, strict=True))["w"]


def test_blocks_give_the_same_similarity_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from attune.recommend.models import itemknn
    from attune.recommend.models.synthetic import clustered_catalog

    data = clustered_catalog(n_users=60, n_items=90, per_user=8)
    whole = ItemKNN(k=7, shrinkage=2).fit(data).similarity_.toarray()
    monkeypatch.setattr(itemknn, "BLOCK_CELLS", 500)  # several blocks of rows
    np.testing.assert_allclose(ItemKNN(k=7, shrinkage=2).fit(data).similarity_.toarray(), whole, rtol=1e-6)
