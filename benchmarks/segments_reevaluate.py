"""Full re-evaluation of 20 segments over 1,000,000 synthetic profiles (target < 60 s).

The offline feature columns are synthesized here (one numpy column per reference, the shape
``attune.features.offline.offline_values`` returns) so the figure is the segment engine's:
vectorized rules, exclusive groups, consent gating, the diff against memberships held in
memory and the writes (memberships, history, hourly sizes) to a SQLite store. Computing the
columns from the lake is measured by the features benchmark. Three runs: from empty (every
membership is an entry), again with nothing to change, and after one rule changed.

    .venv/bin/python benchmarks/segments_reevaluate.py [--people 1000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from attune.features.refs import FeatureRef
from attune.segments.engine import SegmentEngine
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade

DAY = 86400.0
RULES = {
    "views_7d": "count(view, window=7d) >= 3",
    "views_30d": "count(view, window=30d) >= 10",
    "drama_fans": 'count(view, window=7d, category="drama") > 3',
    "buyers": "exists(purchase, window=30d)",
    "big_spenders": "sum(purchase.value, window=30d) >= 100",
    "engaged": "engagement_score >= 0.7",
    "dormant": "recency_days > 14",
    "mobile": 'context.device == "mobile"',
    "mobile_no_buy": 'context.device == "mobile" and not exists(purchase, window=30d)',
    "explorers": "distinct(view, window=7d) >= 5",
    "clickers": "count(click, window=1d) >= 2",
    "frequent": "frequency >= 20",
    "eu": 'context.country in ("DE", "FR", "ES", "IT")',
    "evening": 'context.daypart == "evening"',
    "engaged_buyers": 'segment("engaged") and segment("buyers")',
    "premium": {"rule": "sum(purchase.value, window=30d) >= 200", "group": "tier", "priority": 10},
    "regular": {"rule": "exists(purchase, window=30d)", "group": "tier", "priority": 5},
    "browser": {"rule": "count(view, window=30d) >= 1", "group": "tier", "priority": 1},
    "promo": {"rule": "count(add_to_cart, window=7d) >= 1 and not exists(purchase, window=7d)", "purpose": "marketing"},
    "new": "frequency <= 2",
}


@dataclass
class Columns:
    subject_keys: np.ndarray
    values: dict


def synthesize(engine: SegmentEngine, n: int, seed: int = 0) -> Columns:
    rng = np.random.default_rng(seed)
    values = {}
    for ref in engine._defs.feature_refs:
        if ref.kind in ("count", "distinct"):
            scale = {1 * DAY: 1, 7 * DAY: 3, 30 * DAY: 8}.get(ref.window_seconds, 4)
            values[ref] = rng.poisson(scale, n).astype(np.int64)
        elif ref.kind == "sum":
            values[ref] = np.round(rng.exponential(60, n) * (rng.random(n) < 0.4), 2)
        elif ref.kind == "feature":
            column = rng.random(n) if ref.name == "engagement_score" else rng.exponential(10, n)
            if ref.name == "recency_days":
                column[rng.random(n) < 0.05] = np.nan
            values[ref] = column
        else:
            choices = {
                "device": ["mobile", "desktop", "tablet", None],
                "country": ["DE", "FR", "US", "GB", "IT", None],
                "daypart": ["night", "morning", "afternoon", "evening"],
            }[ref.name]
            values[ref] = np.array(choices, dtype=object)[rng.integers(0, len(choices), n)]
    keys = np.array([f"u:p{i:07d}" for i in range(n)], dtype=object)
    return Columns(keys, values)


def timed(label: str, fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    print(f"{label:<38} {time.perf_counter() - wall:7.1f} s wall  {time.process_time() - cpu:7.1f} s CPU  {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    args = parser.parse_args()
    db = make_engine(f"sqlite:///{tempfile.mkdtemp(prefix='attune-bench-seg-')}/bench.db", sqlite_synchronous="NORMAL")
    upgrade(db)
    refused = set(range(0, args.people, 7))
    engine = SegmentEngine(db, None, allows=lambda key, purpose: int(key[3:]) not in refused)
    engine.load()
    engine.apply_definitions({k: (v if isinstance(v, dict) else {"rule": v}) for k, v in RULES.items()}, reevaluate=False)
    columns = synthesize(engine, args.people)
    print(f"{len(RULES)} segments, {args.people:,} people (SQLite store, synchronous=NORMAL)")
    cold = timed("from empty (every membership an entry)", lambda: engine.evaluate_all(offline=columns, as_of=time.time()))
    held = sum(cold[k] for k in ("entered",))
    timed("again: nothing to change", lambda: engine.evaluate_all(offline=columns, as_of=time.time()))
    engine.apply_definitions({"engaged": {"rule": "engagement_score >= 0.6"}}, reevaluate=False)
    timed("one rule changed (engaged >= 0.6)", lambda: engine.evaluate_all(offline=columns, as_of=time.time()))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"memberships held: {held:,}; peak RSS {rss / 2**20:.0f} MiB (~{rss / args.people:.0f} bytes per profile incl. columns)")


if __name__ == "__main__":
    main()
