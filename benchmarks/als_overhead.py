"""Training time of Attune's ALS beside the ``implicit`` library called directly, in one run.

Both train the same ALS (same factors, regularization, alpha, iterations, seed, threads) on the
same data. Attune's time is ``ALS(...).fit(interactions)`` — input checks, the user × item
matrix, id maps, the positive part, the BLAS thread limit, implicit's fit and the cached YᵀY.
implicit's time is ``AlternatingLeastSquares(...).fit(csr)`` on the already-built matrix
(inside the same ``threadpool_limits(1, "blas")`` implicit itself recommends). Each is the
median of several alternating repeats. Data: ML-100K, plus a synthetic 1M-interaction set.

Run: ``.venv/bin/python benchmarks/als_overhead.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from attune.recommend.data import Interactions
from attune.recommend.models import ALS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_ml100k import DEFAULT_DATA, load_interactions

PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 1.0, "iterations": 15}


def synthetic(
    n_users: int = 50_000, n_items: int = 20_000, n: int = 1_000_000, seed: int = 0
) -> Interactions:
    """Interactions with a long-tailed item popularity (Zipf-like), as real catalogs have."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=n, p=popularity / popularity.sum())
    users = rng.integers(0, n_users, size=n)
    return Interactions.from_arrays(users, items, np.arange(n, dtype=np.float64))


def time_attune(data: Interactions) -> float:
    started = time.perf_counter()
    ALS(**PARAMS, random_state=0).fit(data)
    return time.perf_counter() - started


def time_implicit(data: Interactions) -> float:
    matrix = data.matrix(binary=False)
    started = time.perf_counter()
    with threadpool_limits(1, "blas"):
        AlternatingLeastSquares(**PARAMS, random_state=0).fit(matrix, show_progress=False)
    return time.perf_counter() - started


def main() -> None:
    """Print both training times and the overhead ratio per data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    sets = [("ML-100K", load_interactions(args.data)), ("synthetic 1M", synthetic())]
    print(f"ALS {PARAMS}, median of {args.repeats} alternating runs each")
    print(f"{'data':14} {'interactions':>12} {'implicit s':>11} {'attune s':>9} {'overhead':>9}")
    for label, data in sets:
        time_attune(data), time_implicit(data)  # warm-up: imports, caches, thread pools
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(time_attune(data))
            theirs.append(time_implicit(data))
        a, i = statistics.median(ours), statistics.median(theirs)
        print(f"{label:14} {len(data):12,} {i:11.3f} {a:9.3f} {a / i:8.2f}x")


if __name__ == "__main__":
    main()
