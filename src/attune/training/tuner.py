"""Automatic model choice: tune each candidate with Optuna (TPE) on an inner validation split.

The caller hands over the *training part* of the outer split only. From it the tuner carves
its own per-user temporal holdout (each user's latest 20% of training interactions become
validation), fits every trial on the rest and scores NDCG@10 on validation. The outer test
part never reaches this module, so no choice here can depend on it.

Repeatability: every trial trains on one thread with each model's fixed seed
(:func:`catalog.reproducible`), Optuna's sampler is seeded, and validation users are a seeded
sample, so the same data and budget give the same choice — as long as the trial count, not the
time limit, ends each search (a search cut by time says so in the choice's notes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from attune.errors import ValidationFailed
from attune.evaluation.offline import evaluate_model
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.training import catalog
from attune.training.progress import Progress, Silent

log = logging.getLogger(__name__)

#: Models ``auto`` considers, in this order, when the catalog has them.
AUTO_CANDIDATES: tuple[str, ...] = ("popular", "itemknn", "ease", "als", "bpr", "hybrid", "rerank")

#: Models that combine others: scored after the single models, over their tuned configurations.
ENSEMBLES: frozenset[str] = frozenset({"hybrid", "rerank"})

#: The validation metric ``auto`` maximizes.
SELECTION_METRIC = "ndcg@10"


@dataclass
class Budget:
    """Bounds of a search: trials per model, seconds for the single-model searches (unused time
    passes to the next model; ensembles are scored twice after them), validation users."""

    trials: int = 20
    timeout_seconds: float = 150.0
    max_validation_users: int | None = 5000
    seed: int = 0


@dataclass
class Candidate:
    """The best configuration found for one model."""

    name: str
    params: dict[str, Any]
    score: float | None
    trials: int
    seconds: float
    error: str | None = None
    stopped_by_time: bool = False


@dataclass
class Choice:
    """The outcome of a search: the winner and every candidate's best."""

    best: Candidate
    candidates: list[Candidate]
    metric: str
    train_interactions: int
    validation_interactions: int
    validation_users: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (stored with the registered version)."""
        return {
            "metric": self.metric,
            "best": asdict(self.best),
            "candidates": [asdict(c) for c in self.candidates],
            "train_interactions": self.train_interactions,
            "validation_interactions": self.validation_interactions,
            "validation_users": self.validation_users,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }


def validation_split(train: Interactions) -> tuple[Interactions, Interactions]:
    """The inner split: each user's latest 20% of *training* interactions are validation."""
    inner_train, valid = temporal_holdout(train)
    if len(inner_train) == 0:
        raise ValidationFailed(
            "too little data to tune: after holding out each user's latest interactions nothing is left "
            "to fit on (every user has a single training interaction); train a named model instead"
        )
    return inner_train, valid


def score(
    name: str,
    params: Mapping[str, Any],
    train: Interactions,
    valid: Interactions,
    items: Mapping[str, Mapping[str, Any]] | None,
    max_users: int | None = None,
    seed: int = 0,
) -> float:
    """Validation NDCG@10 of ``name`` with ``params`` fitted on ``train`` (on one thread)."""
    model = catalog.fit(catalog.build(name, catalog.reproducible(name, params)), train, items)
    return evaluate_model(model, valid, ks=(10,), max_users=max_users, seed=seed).get("ndcg", 10)


def tune(
    name: str,
    train: Interactions,
    valid: Interactions,
    items: Mapping[str, Mapping[str, Any]] | None,
    *,
    trials: int,
    timeout: float,
    budget: Budget,
    progress: Progress,
) -> Candidate:
    """Best hyper-parameters of ``name`` by validation NDCG@10 (TPE; defaults tried first)."""
    started = time.perf_counter()
    sampler = optuna.samplers.TPESampler(seed=budget.seed, n_startup_trials=min(8, max(trials // 2, 1)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    searched = _searched(name)
    errors: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        params = catalog.suggest(name, trial)
        # The catalog prefixes Optuna's names ("ease.l2"); keep the model's own names.
        trial.set_user_attr("params", params)
        try:
            value = score(name, params, train, valid, items, budget.max_validation_users, budget.seed)
        except Exception as exc:  # noqa: BLE001 - one failing configuration must not end the search
            errors.append(f"{type(exc).__name__}: {exc}")
            log.info("trial of %s with %s failed: %s", name, params, exc)
            value = math.nan  # Optuna records a NaN objective as a failed trial
        current = None if math.isnan(value) else value
        best = max((v for v in (_best_value(study), current) if v is not None), default=None)
        progress.trial(name, trial.number + 1, trials if searched else 1, current, best)
        return value

    defaults = _default_trial(name, searched)
    if defaults:
        study.enqueue_trial(defaults, skip_if_exists=True)  # a tuned model never loses to its defaults
    study.optimize(objective, n_trials=trials if searched else 1, timeout=timeout)
    best = _best_trial(study)
    seconds = time.perf_counter() - started
    if best is None:
        return Candidate(
            name, {}, None, len(study.trials), seconds, errors[-1] if errors else "no trial finished"
        )
    params = {**catalog.defaults(name), **best.user_attrs["params"]}
    stopped = bool(searched) and len(study.trials) < trials
    return Candidate(name, params, float(best.value), len(study.trials), seconds, stopped_by_time=stopped)


def _default_trial(name: str, searched: set[str]) -> dict[str, Any]:
    """The defaults of ``name`` under the search space's (possibly prefixed) parameter names.

    An on/off switch (``recency``) is set to whether its guarded default (``recency_tau``) is on.
    """
    defaults = catalog.defaults(name)
    switches = catalog.switches()
    out = {}
    for optuna_name in searched:
        plain = optuna_name.removeprefix(f"{name}.")
        if plain in switches and switches[plain] in defaults:
            out[optuna_name] = defaults[switches[plain]] is not None
        elif defaults.get(plain) is not None:
            out[optuna_name] = defaults[plain]
    return out


def _searched(name: str) -> set[str]:
    """The hyper-parameters the search space of ``name`` asks for."""
    probe = _Probe()
    catalog.suggest(name, probe)
    return probe.names


class _Probe:
    """A stand-in trial that records which parameters a search space asks for."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def _take(self, name: str, value: Any) -> Any:
        self.names.add(name)
        return value

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        """The low end."""
        return self._take(name, low)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        """The low end."""
        return self._take(name, low)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """The first choice."""
        return self._take(name, choices[0])


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    return max(done, key=lambda t: t.value) if done else None


def _best_value(study: optuna.Study) -> float | None:
    best = _best_trial(study)
    return None if best is None else float(best.value)


def choose(
    train: Interactions,
    items: Mapping[str, Mapping[str, Any]] | None,
    candidates: Sequence[str] | None = None,
    budget: Budget | None = None,
    progress: Progress | None = None,
) -> Choice:
    """Tune every candidate on an inner split of ``train`` and pick the best by validation NDCG@10.

    Single models are tuned first (TPE, their defaults as the first trial); then each ensemble
    (hybrid blend, learned re-ranker) is scored twice, over default components and over the components just tuned, and
    keeps the better. Every score comes from the same inner validation split.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported through progress
    budget = budget or Budget()
    progress = progress or Silent()
    started = time.perf_counter()
    available = catalog.model_names()
    wanted = list(candidates or AUTO_CANDIDATES)
    if candidates is None and items and "content" not in wanted:
        wanted.insert(-1, "content")  # item attributes exist: content-based similarity may help
    names = [n for n in wanted if n in available]
    if not names:
        raise ValidationFailed(f"none of the candidate models is available (catalog: {', '.join(available)})")
    singles = [n for n in names if n not in ENSEMBLES]
    ensembles = [n for n in names if n in ENSEMBLES]
    inner_train, valid = validation_split(train)
    progress.stage(
        f"tuning {', '.join(names)} on {len(inner_train):,} training interactions, "
        f"validating on {len(valid):,} (each user's latest 20% of the training part)"
    )
    results: list[Candidate] = []
    # The time limit bounds the single-model searches; each ensemble is then scored twice only.
    for position, name in enumerate(singles):
        remaining = budget.timeout_seconds - (time.perf_counter() - started)
        share = max(remaining / (len(singles) - position), 1.0)
        progress.stage(f"tuning {name} (up to {budget.trials} trials, {share:.0f}s)")
        results.append(
            tune(
                name,
                inner_train,
                valid,
                items,
                trials=budget.trials,
                timeout=share,
                budget=budget,
                progress=progress,
            )
        )
    for name in ensembles:
        progress.stage(f"scoring {name} over default and over tuned components")
        results.append(_ensemble(name, results, inner_train, valid, items, budget, progress))
    scored = [c for c in results if c.score is not None]
    if not scored:
        reasons = "; ".join(f"{c.name}: {c.error}" for c in results)
        raise ValidationFailed(f"no candidate model could be trained on this data ({reasons})")
    best = max(scored, key=lambda c: c.score)  # type: ignore[arg-type, return-value]
    notes = [
        f"{c.name}: the time limit ended its search after {c.trials} of {budget.trials} trials "
        "(a rerun may choose differently; raise training.tune_timeout_seconds for a repeatable choice)"
        for c in results
        if c.stopped_by_time
    ]
    n_valid_users = len(set(valid.users.tolist()))
    return Choice(
        best=best,
        candidates=results,
        metric=SELECTION_METRIC,
        train_interactions=len(inner_train),
        validation_interactions=len(valid),
        validation_users=min(n_valid_users, budget.max_validation_users or n_valid_users),
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def tuned_components(results: Sequence[Candidate]) -> dict[str, dict[str, Any]]:
    """Components for an ensemble: every tuned personalized model within 80% of the best one, plus popularity."""
    scored = [c for c in results if c.score is not None and c.name not in ENSEMBLES]
    if not scored:
        return {}
    top = max(c.score for c in scored)  # type: ignore[type-var]
    components = {c.name: dict(c.params) for c in scored if c.name != "popular" and c.score >= 0.8 * top}  # type: ignore[operator]
    if components:
        components["popular"] = next((dict(c.params) for c in scored if c.name == "popular"), {})
    return components


def _ensemble(
    name: str,
    results: Sequence[Candidate],
    train: Interactions,
    valid: Interactions,
    items: Mapping[str, Mapping[str, Any]] | None,
    budget: Budget,
    progress: Progress,
) -> Candidate:
    started = time.perf_counter()
    configurations = [catalog.defaults(name)]
    components = tuned_components(results)
    if components:
        configurations.append({**catalog.defaults(name), "components": components})
    best: Candidate | None = None
    errors: list[str] = []
    for number, params in enumerate(configurations, start=1):
        try:
            value: float | None = score(
                name, params, train, valid, items, budget.max_validation_users, budget.seed
            )
        except Exception as exc:  # noqa: BLE001 - as in tune(): report, go on
            errors.append(f"{type(exc).__name__}: {exc}")
            value = None
        if value is not None and (best is None or value > best.score):  # type: ignore[operator]
            best = Candidate(name, params, value, number, 0.0)
        progress.trial(name, number, len(configurations), value, None if best is None else best.score)
    seconds = time.perf_counter() - started
    if best is None:
        return Candidate(
            name,
            {},
            None,
            len(configurations),
            seconds,
            errors[-1] if errors else "no configuration finished",
        )
    best.trials, best.seconds = len(configurations), seconds
    return best
