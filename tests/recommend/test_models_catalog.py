"""The model catalog the trainer, tuner and CLI build models from."""

from __future__ import annotations

import optuna
import pytest

from attune.errors import ValidationFailed
from attune.recommend.models import DEFAULTS, MODELS, Recommender, make_model, search_space
from attune.recommend.models.synthetic import checkerboard

ITEMS = {f"i{i:02d}": {"parity": "even" if i % 2 == 0 else "odd", "rank": i} for i in range(20)}


def test_catalog_names() -> None:
    assert list(MODELS) == [
        "popular",
        "trending",
        "itemknn",
        "ease",
        "als",
        "bpr",
        "content",
        "hybrid",
        "rerank",
    ]
    for name, cls in MODELS.items():
        assert issubclass(cls, Recommender) and cls.name == name
    assert not MODELS["popular"].personalized and not MODELS["trending"].personalized
    assert all(
        MODELS[n].personalized for n in ("itemknn", "ease", "als", "bpr", "content", "hybrid", "rerank")
    )


def test_defaults_are_the_init_defaults() -> None:
    for name in MODELS:
        assert make_model(name).get_params() == DEFAULTS[name]
    assert DEFAULTS["ease"] == {"l2": 250.0, "recency_tau": None}


def test_make_model_overrides_and_refuses_unknown_things() -> None:
    assert make_model("ease", l2=10.0).l2 == 10.0
    with pytest.raises(ValidationFailed, match="unknown model 'svd'; choose one of popular, trending"):
        make_model("svd")
    with pytest.raises(ValidationFailed, match="ease: unknown hyper-parameter.*lambda_.*valid are l2"):
        make_model("ease", lambda_=3)


def test_search_space_values_are_in_range() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        ease = search_space("ease", trial)
        assert 10 <= ease["l2"] <= 5000
        knn = search_space("itemknn", trial)
        assert 20 <= knn["k"] <= 500 and 0 <= knn["shrinkage"] <= 200
        als = search_space("als", trial)
        assert 16 <= als["factors"] <= 256 and 5 <= als["iterations"] <= 50
        bpr = search_space("bpr", trial)
        assert set(bpr) == {
            "factors",
            "learning_rate",
            "regularization",
            "iterations",
            "fold_in_scale",
            "recency_tau",
        }
        for params in (ease, knn, als, bpr):
            assert params["recency_tau"] is None or 1.0 <= params["recency_tau"] <= 1000.0
    assert "ease.l2" in trial.params  # prefixed, so one study can hold several models


@pytest.mark.parametrize("name", list(MODELS))
def test_every_sampled_configuration_builds_and_trains(name: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    params = search_space(name, study.ask())
    assert set(params) <= set(MODELS[name].param_names())
    if name in ("als", "bpr"):
        params["iterations"] = 3  # keep it fast: the point is that the values are accepted
    if name == "rerank":
        params.update(components=["ease", "popular"], n_estimators=5, min_child_samples=1)
    if name == "hybrid":
        params.update(components=["ease", "popular"])
    model = make_model(name, **params).fit(checkerboard(), items=ITEMS)
    assert len(model.recommend("u00", k=3)[0]) == 3


def test_search_space_of_an_unknown_model() -> None:
    with pytest.raises(ValidationFailed, match="unknown model"):
        search_space("nope", optuna.create_study().ask())
