"""`train --model auto` on MovieLens 100K under the DESIGN.md protocol, beside the reference table.

    .venv/bin/python benchmarks/train_ml100k.py [--data ../shared/data/ml-100k/u.data]
        [--trials N] [--timeout SECONDS] [--via-store]

By default ``u.data`` is loaded straight into training data as implicit positives (the
protocol: every interaction counts as a positive). ``--via-store`` instead imports it with
``attune import interactions`` into a temporary data directory and trains from the store, the
way an installation does: ratings then go through the signal weights, so 1-2 star ratings
become negative feedback, which the protocol's test set still counts as positives.

Printed: the chosen model and hyper-parameters, its validation NDCG@10 (inner split of the
training part), the held-out Recall@10/NDCG@10 beside the DESIGN.md table and this harness's
own EASE λ=250 figure on the same split, and the time taken.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from attune.evaluation.offline import evaluate_model
from attune.evaluation.split import temporal_holdout
from attune.recommend.models import make_model
from attune.runtime import Runtime
from attune.settings import load_settings
from attune.training import catalog
from attune.training.loading import InteractionRecords, build_training_data, load_training_data
from attune.training.progress import Progress
from attune.training.trainer import budget_from, describe_params, registry_for, train_on

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"
REFERENCE = [  # DESIGN.md: model, Recall@10, NDCG@10
    ("popularity", 0.111, 0.111),
    ("item kNN (cosine, k=200)", 0.181, 0.182),
    ("ALS (implicit, 64 factors)", 0.177, 0.174),
    ("EASE (λ=250)", 0.193, 0.192),
]


class Printer(Progress):
    """Stages on one line each; one line per model when its tuning ends."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.best: dict[str, tuple[int, int, float | None]] = {}

    def stage(self, message: str) -> None:
        """Print the step with the elapsed time."""
        print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", flush=True)

    def trial(self, model: str, done: int, total: int, score: float | None, best: float | None) -> None:
        """Remember the latest state of ``model``."""
        self.best[model] = (done, total, best)


def load_direct(path: Path, settings) -> tuple:
    """u.data as implicit positives (type view), user ids as subject keys."""
    raw = np.loadtxt(path, dtype=np.int64)
    records = InteractionRecords.from_columns([f"u:{u}" for u in raw[:, 0]], raw[:, 1].astype(str), raw[:, 3])
    return build_training_data(records, settings)


def load_via_store(path: Path, settings) -> tuple:
    """Import u.data with the importer, then load from the store."""
    from attune.importers import run_import

    runtime = Runtime.open(settings)
    try:
        result = run_import(runtime, "interactions", path)
        print(result.summary())
        runtime.catch_up()
        return load_training_data(runtime.engine, settings)
    finally:
        runtime.close()


def main() -> None:
    """Run the benchmark and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--trials", type=int, default=None, help="Trials per model (default: settings).")
    parser.add_argument(
        "--timeout", type=float, default=None, help="Seconds for the search (default: settings)."
    )
    parser.add_argument(
        "--via-store", action="store_true", help="Import through the store and its signal weights."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="attune-ml100k-") as tmp:
        settings = load_settings(data_dir=Path(tmp))
        if args.trials:
            settings.training.tune_trials = args.trials
        if args.timeout:
            settings.training.tune_timeout_seconds = args.timeout
        started = time.perf_counter()
        data = load_via_store(args.data, settings) if args.via_store else load_direct(args.data, settings)
        loaded = time.perf_counter() - started
        runtime = Runtime.open(settings)  # the registry's store
        try:
            progress = Printer()
            report = train_on(
                data,
                registry_for(runtime.engine, settings),
                "auto",
                budget=budget_from(settings),
                progress=progress,
            )
        finally:
            runtime.close()
        took = time.perf_counter() - started

        train_part, test_part = temporal_holdout(data.interactions)
        ease = evaluate_model(make_model("ease", l2=250.0).fit(train_part), test_part, ks=(10,))

    choice = report.choice
    print()
    print(
        f"data: {len(data.interactions):,} interactions ({'store' if args.via_store else 'implicit positives'}), "
        f"{report.n_train:,} training / {report.n_test:,} held out, {report.test_users} test users"
    )
    print(
        f"budget: {settings.training.tune_trials} trials per model, {settings.training.tune_timeout_seconds:.0f}s"
    )
    print("\nvalidation NDCG@10 per candidate (inner split of the training part):")
    for candidate in choice.candidates:
        value = "failed: " + (candidate.error or "") if candidate.score is None else f"{candidate.score:.4f}"
        params = (
            describe_params(candidate.params, catalog.defaults(candidate.name)) if candidate.params else ""
        )
        print(
            f"  {candidate.name:<8} {value:<10} {candidate.trials:>3} trials {candidate.seconds:6.1f}s  {params}"
        )
    for note in choice.notes:
        print(f"  note: {note}")
    print(f"\nchosen: {report.name} ({describe_params(report.params, catalog.defaults(report.name))})")
    print(f"validation NDCG@10: {choice.best.score:.4f}")
    print("\nheld-out test (per-user temporal holdout, DESIGN.md):")
    print(f"  {'model':<40} {'Recall@10':>9} {'NDCG@10':>8}")
    for name, recall, ndcg in REFERENCE:
        print(f"  {name + ' [DESIGN.md]':<40} {recall:>9.3f} {ndcg:>8.3f}")
    print(
        f"  {'EASE (λ=250) [this harness]':<40} {ease.get('recall', 10):>9.4f} {ease.get('ndcg', 10):>8.4f}"
    )
    metrics = report.test_metrics
    print(f"  {'auto → ' + report.name:<40} {metrics['recall@10']:>9.4f} {metrics['ndcg@10']:>8.4f}")
    print(f"\ntime: {took:.1f}s in all (loading {loaded:.1f}s, search {choice.seconds:.1f}s)")


if __name__ == "__main__":
    main()
