"""The tuner: defaults first, failures survived, the inner split, ensembles over tuned components."""

from __future__ import annotations

from typing import Any

import pytest
from planted import planted_data

from attune.errors import ValidationFailed
from attune.evaluation.split import temporal_holdout
from attune.training import tuner
from attune.training.progress import Silent
from attune.training.tuner import Budget, Candidate, choose, tune, tuned_components, validation_split

BUDGET = Budget(trials=3, timeout_seconds=60)


class Recorder(Silent):
    def __init__(self) -> None:
        self.trials: list[tuple[str, int, float | None]] = []

    def trial(self, model: str, done: int, total: int, score: float | None, best: float | None) -> None:
        self.trials.append((model, done, score))


def test_the_inner_split_is_the_holdout_of_the_training_part() -> None:
    train = planted_data().interactions
    inner, valid = validation_split(train)
    expected_inner, expected_valid = temporal_holdout(train)
    assert len(inner) == len(expected_inner) and len(valid) == len(expected_valid)
    assert len(inner) + len(valid) == len(train)


def test_defaults_are_the_first_trial_so_tuning_never_loses_to_them(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []

    def fake_score(name: str, params: dict[str, Any], *_: Any) -> float:
        asked.append(params)
        return 1.0 if params["l2"] == 250.0 else 0.5

    monkeypatch.setattr(tuner, "score", fake_score)
    data = planted_data().interactions
    result = tune("ease", data, data, None, trials=3, timeout=60, budget=BUDGET, progress=Silent())
    assert asked[0] == {"l2": 250.0, "recency_tau": None}
    assert (result.params, result.score, result.trials) == ({"l2": 250.0, "recency_tau": None}, 1.0, 3)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def flaky(name: str, params: dict[str, Any], *_: Any) -> float:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValidationFailed("this configuration cannot be fitted")
        return 0.3

    monkeypatch.setattr(tuner, "score", flaky)
    data = planted_data().interactions
    progress = Recorder()
    result = tune("ease", data, data, None, trials=3, timeout=60, budget=BUDGET, progress=progress)
    assert result.score == 0.3 and result.error is None
    assert progress.trials[0] == ("ease", 1, None)


def test_a_model_failing_every_trial_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, *_: Any) -> float:
        if name == "itemknn":
            raise ValidationFailed("no neighbours")
        return 0.2

    monkeypatch.setattr(tuner, "score", broken)
    choice = choose(planted_data().interactions, None, ["itemknn", "popular"], BUDGET)
    knn = next(c for c in choice.candidates if c.name == "itemknn")
    assert knn.score is None and "no neighbours" in knn.error
    assert choice.best.name == "popular"


def test_when_nothing_can_be_trained_the_error_names_each_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, *_: Any) -> float:
        raise ValidationFailed(f"{name} is broken")

    monkeypatch.setattr(tuner, "score", broken)
    with pytest.raises(ValidationFailed, match="no candidate model could be trained.*ease is broken"):
        choose(planted_data().interactions, None, ["ease"], BUDGET)


def test_unknown_candidates_only_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="none of the candidate models is available"):
        choose(planted_data().interactions, None, ["nope"], BUDGET)


def test_ensembles_use_tuned_components_within_reach_of_the_best() -> None:
    results = [
        Candidate("popular", {"weighted": False}, 0.1, 1, 0.0),
        Candidate("ease", {"l2": 100.0}, 0.30, 3, 0.0),
        Candidate("itemknn", {"k": 50}, 0.25, 3, 0.0),
        Candidate("als", {"factors": 8}, 0.10, 3, 0.0),  # far behind: left out
        Candidate("bpr", {}, None, 3, 0.0, "failed"),
    ]
    assert tuned_components(results) == {
        "ease": {"l2": 100.0},
        "itemknn": {"k": 50},
        "popular": {"weighted": False},
    }


def test_choose_scores_the_hybrid_twice_and_keeps_the_better(monkeypatch: pytest.MonkeyPatch) -> None:
    scored: list[tuple[str, dict[str, Any]]] = []

    def fake(name: str, params: dict[str, Any], *_: Any) -> float:
        scored.append((name, params))
        if name == "hybrid":
            return 0.9 if params.get("components") else 0.8
        return 0.5

    monkeypatch.setattr(tuner, "score", fake)
    choice = choose(planted_data().interactions, None, ["popular", "ease", "hybrid"], BUDGET)
    hybrids = [p for n, p in scored if n == "hybrid"]
    assert len(hybrids) == 2 and hybrids[0]["components"] is None
    assert set(hybrids[1]["components"]) == {"ease", "popular"}
    assert choice.best.name == "hybrid" and choice.best.score == 0.9


def test_trials_train_on_one_thread_components_included() -> None:
    from attune.training import catalog

    assert catalog.reproducible("bpr", {"factors": 8})["num_threads"] == 1
    assert catalog.reproducible("als", {})["num_threads"] == 1
    assert catalog.reproducible("ease", {"l2": 5.0}) == {"l2": 5.0}
    hybrid = catalog.reproducible("hybrid", {"components": {"bpr": {"factors": 8}, "ease": {}}})
    assert hybrid["components"] == {"bpr": {"factors": 8, "num_threads": 1}, "ease": {}}
    rerank = catalog.reproducible("rerank", {"components": ["als", "popular"]})
    assert rerank["num_threads"] == 1 and rerank["components"]["als"] == {"num_threads": 1}


def test_the_same_data_and_budget_give_the_same_choice() -> None:
    data = planted_data(n_users=60, n_items=30, per_user=10).interactions
    budget = Budget(trials=4, timeout_seconds=600)
    first = choose(data, None, ["bpr", "als", "ease"], budget)
    second = choose(data, None, ["bpr", "als", "ease"], budget)
    assert [(c.name, c.params, c.score) for c in first.candidates] == [
        (c.name, c.params, c.score) for c in second.candidates
    ]
    assert first.best.name == second.best.name and not first.notes


def test_a_search_cut_by_the_time_limit_is_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    def slow(name: str, *_: Any) -> float:
        clock.sleep(0.3)
        return 0.5

    monkeypatch.setattr(tuner, "score", slow)
    choice = choose(planted_data().interactions, None, ["ease"], Budget(trials=50, timeout_seconds=0.5))
    assert choice.candidates[0].stopped_by_time
    assert any("time limit ended its search" in note for note in choice.notes)
