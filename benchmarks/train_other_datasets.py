"""`train --model auto` against the DESIGN.md reference baselines on several data sets of the same kind.

    .venv/bin/python benchmarks/train_other_datasets.py [--trials N] [--timeout SECONDS]
        [--only ml100k,synth-a] [--no-items] [--quick]

Every data set goes through the DESIGN.md protocol: implicit positives, the per-user temporal
holdout (each user's latest 20%, at least one, is the test part), seen items excluded,
Recall@10 / NDCG@10 averaged over the test users. On each, the four reference baselines
(popularity, item kNN cosine k=200, ALS 64 factors, EASE λ=250, with the settings of
``quality_ml100k.py``) are fitted on the training part, and so is ``auto``: the tuner
(:func:`attune.training.tuner.choose`, what ``attune train --model auto`` calls) searches on an
inner split of the training part only, and its choice is fitted on the training part and
scored on the test part exactly as :func:`attune.training.trainer.train_on` does. The test part
is used for nothing but the printed figures.

Data sets:

- ``ml100k``: MovieLens 100K ``u.data`` (with ``u.item`` as catalog attributes);
- ``ml100k-liked``: only ratings of 4 or 5;
- ``ml100k-half-users``: a random half of the users (seed 0);
- ``ml100k-early``: the first 70% of the timeline (interactions before the 0.7 time quantile);
- ``synth-a`` / ``synth-b``: :func:`attune.synth.generate` (seed 1: 2,000 users, 800 items, 28
  days; seed 2: 4,000 users, 2,000 items, 56 days); every event on an item is an implicit
  positive, keeping each person's first event per item (like one rating per movie), with the
  synthetic catalog (title, description, category, genres, price) as item attributes.

``--quick`` (6 trials per model) is for iterating on a busy machine; the default budget is the
installation's (``training.tune_trials``), with a time limit generous enough that the trial
count, not the clock, ends each search (so the choice is repeatable).
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attune.evaluation.offline import evaluate_model
from attune.evaluation.split import temporal_holdout
from attune.recommend.data import Interactions
from attune.settings import load_settings
from attune.training import catalog
from attune.training.trainer import describe_params
from attune.training.tuner import Budget, choose

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
K = 10

#: The DESIGN.md reference baselines: label, model, hyper-parameters.
BASELINES: list[tuple[str, str, dict[str, Any]]] = [
    ("popular", "popular", {}),
    ("itemknn k=200", "itemknn", {"k": 200, "shrinkage": 0.0}),
    ("ALS 64f", "als", {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15}),
    ("EASE λ=250", "ease", {"l2": 250.0}),
]

Items = dict[str, dict[str, Any]]


@dataclass
class Dataset:
    """Interactions (implicit positives) and the catalog's item attributes."""

    name: str
    interactions: Interactions
    items: Items | None


# -- data sets -----------------------------------------------------------------------------
def _ml100k_raw(folder: Path) -> np.ndarray:
    return np.loadtxt(folder / "u.data", dtype=np.int64)  # user, item, rating, timestamp


def _ml100k_items(folder: Path) -> Items:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality_ml100k import load_items  # the same attributes the quality table uses

    return load_items(folder)


def _from_ml100k(raw: np.ndarray) -> Interactions:
    return Interactions.from_arrays(raw[:, 0], raw[:, 1], raw[:, 3])


def ml100k(folder: Path) -> Interactions:
    """All of ``u.data``."""
    return _from_ml100k(_ml100k_raw(folder))


def ml100k_liked(folder: Path) -> Interactions:
    """Only ratings of 4 or 5."""
    raw = _ml100k_raw(folder)
    return _from_ml100k(raw[raw[:, 2] >= 4])


def ml100k_half_users(folder: Path, seed: int = 0) -> Interactions:
    """A random half of the users, with all their ratings."""
    raw = _ml100k_raw(folder)
    users = np.unique(raw[:, 0])
    kept = np.random.default_rng(seed).choice(users, size=len(users) // 2, replace=False)
    return _from_ml100k(raw[np.isin(raw[:, 0], kept)])


def ml100k_early(folder: Path, share: float = 0.7) -> Interactions:
    """Interactions before the ``share`` quantile of the timestamps."""
    raw = _ml100k_raw(folder)
    cutoff = np.quantile(raw[:, 3], share)
    return _from_ml100k(raw[raw[:, 3] < cutoff])


def synthetic(seed: int, n_users: int, n_items: int, days: int) -> tuple[Interactions, Items]:
    """Item events of a generated data set as implicit positives (first event per person and item)."""
    from attune.synth import generate

    data = generate(seed=seed, n_users=n_users, n_items=n_items, days=days)
    table = data.table  # sorted by time
    on_item = np.flatnonzero(table.item >= 0)
    pair = table.user[on_item].astype(np.int64) * n_items + table.item[on_item]
    _, first = np.unique(pair, return_index=True)
    rows = on_item[np.sort(first)]
    item_ids = np.array([r["item_id"] for r in data.items], dtype=object)
    interactions = Interactions.from_arrays(
        np.char.add("s", table.user[rows].astype(str)), item_ids[table.item[rows]], table.timestamp[rows]
    )
    items = {r["item_id"]: {k: v for k, v in r.items() if k != "item_id"} for r in data.items}
    return interactions, items


def datasets(names: set[str] | None, with_items: bool, folder: Path) -> list[Dataset]:
    """The data sets asked for, built lazily in the order of the table."""
    ml_items: Items | None = None

    def movies() -> Items | None:
        nonlocal ml_items
        if with_items and ml_items is None:
            ml_items = _ml100k_items(folder)
        return ml_items

    builders: list[tuple[str, Callable[[], tuple[Interactions, Items | None]]]] = [
        ("ml100k", lambda: (ml100k(folder), movies())),
        ("ml100k-liked", lambda: (ml100k_liked(folder), movies())),
        ("ml100k-half-users", lambda: (ml100k_half_users(folder), movies())),
        ("ml100k-early", lambda: (ml100k_early(folder), movies())),
        ("synth-a", lambda: synthetic(1, 2000, 800, 28)),
        ("synth-b", lambda: synthetic(2, 4000, 2000, 56)),
    ]
    out = []
    for name, build in builders:
        if names and name not in names:
            continue
        interactions, items = build()
        out.append(Dataset(name, interactions, items if with_items else None))
    return out


# -- running -------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """CPU time of this process and its finished children (fairer than wall time on a shared box)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def held_out(
    name: str, params: dict[str, Any], train: Interactions, test: Interactions, items: Items | None
) -> tuple[float, float]:
    """(Recall@10, NDCG@10) on the test part of ``name`` fitted on the training part (one thread)."""
    model = catalog.fit(catalog.build(name, catalog.reproducible(name, params)), train, items)
    evaluation = evaluate_model(model, test, ks=(K,))
    return evaluation.get("recall", K), evaluation.get("ndcg", K)


@dataclass
class Row:
    """One data set's figures."""

    name: str
    size: str
    baselines: dict[str, tuple[float, float]]
    auto_name: str
    auto_params: str
    auto_validation: float
    auto: tuple[float, float]
    cpu: float
    notes: list[str]

    @property
    def best_baseline(self) -> tuple[str, float]:
        label = max(self.baselines, key=lambda b: self.baselines[b][1])
        return label, self.baselines[label][1]


def run(dataset: Dataset, budget: Budget, log: Callable[[str], None]) -> Row:
    """Baselines and auto on one data set."""
    started = cpu_seconds()
    data = dataset.interactions
    train, test = temporal_holdout(data)
    size = f"{len(data):,} × {len(np.unique(data.users)):,}u × {len(np.unique(data.items)):,}i"
    log(f"{dataset.name}: {size}; train {len(train):,}, test {len(test):,}")
    baselines = {}
    for label, name, params in BASELINES:
        baselines[label] = held_out(name, params, train, test, dataset.items)
        log(f"  {label:<14} R@10 {baselines[label][0]:.4f}  N@10 {baselines[label][1]:.4f}")
    choice = choose(train, dataset.items, budget=budget)  # the training part only
    best = choice.best
    for c in choice.candidates:
        value = "failed" if c.score is None else f"{c.score:.4f}"
        log(
            f"  tuned {c.name:<8} valid N@10 {value:<7} {c.trials:>3} trials  {describe_params(c.params, catalog.defaults(c.name)) if c.params else c.error}"
        )
    auto = held_out(best.name, best.params, train, test, dataset.items)
    log(f"  auto → {best.name}: R@10 {auto[0]:.4f}  N@10 {auto[1]:.4f}")
    return Row(
        dataset.name,
        size,
        baselines,
        best.name,
        describe_params(best.params, catalog.defaults(best.name)),
        float(best.score or 0.0),
        auto,
        cpu_seconds() - started,
        list(choice.notes),
    )


def print_table(rows: list[Row], budget: Budget) -> None:
    """The summary: NDCG@10 of every baseline, auto's choice and figure, the margin."""
    labels = [b[0] for b in BASELINES]
    print()
    print(f"held-out NDCG@10 (Recall@10 in brackets); auto: {budget.trials} trials per model")
    head = f"{'data set':<18} {'interactions×users×items':<26}" + "".join(f" {b:>15}" for b in labels)
    head += f" {'auto':>15}  {'Δ vs best':>9}  {'CPU s':>6}  choice"
    print(head)
    print("-" * len(head))
    for row in rows:
        cells = "".join(f" {row.baselines[b][1]:.4f}({row.baselines[b][0]:.3f})" for b in labels)
        _, best = row.best_baseline
        margin = row.auto[1] - best
        mark = "✓" if margin > 0 else "✗"
        print(
            f"{row.name:<18} {row.size:<26}{cells} {row.auto[1]:.4f}({row.auto[0]:.3f})  {margin:+.4f} {mark}  "
            f"{row.cpu:6.0f}  {row.auto_name} ({row.auto_params})"
        )
    for row in rows:
        for note in row.notes:
            print(f"note [{row.name}]: {note}")


def main() -> None:
    """Parse arguments, run every data set, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ML100K, help="The ml-100k folder.")
    parser.add_argument("--trials", type=int, default=None, help="Trials per model (default: settings).")
    parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds for each data set's search.")
    parser.add_argument("--quick", action="store_true", help="6 trials per model, for iterating.")
    parser.add_argument("--only", default="", help="Comma-separated data set names.")
    parser.add_argument(
        "--no-items", action="store_true", help="Leave item attributes out (no content model)."
    )
    args = parser.parse_args()
    settings = load_settings()
    trials = args.trials or (6 if args.quick else settings.training.tune_trials)
    budget = Budget(
        trials=trials,
        timeout_seconds=args.timeout,
        max_validation_users=settings.training.max_validation_users,
    )
    names = {n.strip() for n in args.only.split(",") if n.strip()} or None
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    rows = [run(d, budget, log) for d in datasets(names, not args.no_items, args.data)]
    print_table(rows, budget)
    print(f"\nwall time {time.perf_counter() - started:.0f}s, CPU {cpu_seconds():.0f}s")


if __name__ == "__main__":
    main()
