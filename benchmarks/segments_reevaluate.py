"""Full re-evaluation of 20 segments over 1,000,000 synthetic profiles (target < 60 s).

From the log, as ``attune segments evaluate`` does it: the features are computed from a
synthetic Parquet lake (``--people`` people x 8 events over 30 days, written by the features
benchmark's ``write_lake``; ``--lake DIR`` keeps it for the next run) with
``attune.features.offline.offline_values``, then the engine evaluates the 20 rules vectorized,
resolves exclusive groups, gates consent, diffs against the memberships held in memory and
writes the changes to a SQLite store. Three runs: from empty (every membership an entry),
again with nothing to change, and after one rule changed. Each prints wall and CPU seconds
of the whole run and of each stage (features / rules / memberships / store).

``--synthetic`` skips the lake and draws the feature columns at random (the engine alone).

    .venv/bin/python benchmarks/segments_reevaluate.py [--people 1000000] [--lake DIR] [--synthetic]
        [--database-url postgresql://postgres@127.0.0.1/attune_seg2_bench]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attune.segments.engine import SegmentEngine
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    "promo": {
        "rule": "count(add_to_cart, window=7d) >= 1 and not exists(purchase, window=7d)",
        "purpose": "marketing",
    },
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


class Stages:
    """Progress callback that times each stage of ``evaluate_all`` (wall and CPU)."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[float, float]] = {}
        self.took: dict[str, tuple[float, float]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if done == 0:
            self.started[stage] = (time.perf_counter(), time.process_time())
        elif done >= total and stage in self.started:
            wall, cpu = self.started.pop(stage)
            self.took[stage] = (time.perf_counter() - wall, time.process_time() - cpu)

    def line(self) -> str:
        return "  ".join(f"{k} {w:.1f}/{c:.1f}" for k, (w, c) in self.took.items())


def timed(label: str, engine: SegmentEngine, **kwargs) -> dict:
    stages = Stages()
    wall, cpu = time.perf_counter(), time.process_time()
    result = engine.evaluate_all(stages, **kwargs)
    print(
        f"{label:<36} {time.perf_counter() - wall:6.1f} s wall {time.process_time() - cpu:6.1f} s CPU   {result}"
    )
    print(f"{'':<36} stages (wall/CPU s): {stages.line()}")
    return result


def lake_offline(lake: Path, people: int):
    """``offline(refs, as_of)`` over a synthetic lake (written unless ``lake`` already holds one)."""
    from features_speed import NOW, write_lake

    from attune.features.definitions import FeatureDefinitions
    from attune.features.offline import OfflineSource, offline_values
    from attune.profiles.identity import SubjectKeys

    if not (lake / "events").is_dir():
        wall = time.perf_counter()
        events = write_lake(lake, people, 8)
        print(
            f"synthetic lake: {events:,} events of {people:,} people written in {time.perf_counter() - wall:.1f} s"
        )
    categories = {f"i{i}": ("drama",) if i % 3 == 0 else ("comedy",) for i in range(5000)}
    source = OfflineSource(lake, {}, categories, SubjectKeys(), FeatureDefinitions())
    return (lambda refs, as_of: offline_values(source, refs, as_of)), NOW


def memory_per_profile(people: int = 100_000) -> None:
    """Bytes the engine's memory holds per profile and per membership (tracemalloc, synthetic)."""
    import gc
    import tracemalloc

    db = make_engine(
        f"sqlite:///{tempfile.mkdtemp(prefix='attune-bench-seg-')}/mem.db", sqlite_synchronous="NORMAL"
    )
    upgrade(db)
    engine = SegmentEngine(db, None)
    engine.load()
    engine.apply_definitions(
        {k: (v if isinstance(v, dict) else {"rule": v}) for k, v in RULES.items()}, reevaluate=False
    )
    columns = synthesize(engine, people, seed=5)
    engine.offline = lambda refs, as_of: columns
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    engine.evaluate_all(as_of=time.time())
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    held = sum(engine.sizes().values())
    print(
        f"memory of memberships: {used / people:.0f} bytes per profile, {used / held:.0f} per membership "
        f"({held:,} memberships of {people:,} people; keys are the offline columns' strings)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--lake", type=Path, help="keep the synthetic lake here (reused when present)")
    parser.add_argument("--synthetic", action="store_true", help="random feature columns instead of the lake")
    parser.add_argument(
        "--database-url", help="a store of its own (default: a new SQLite file); its tables are DROPPED"
    )
    args = parser.parse_args()
    if args.database_url:
        from attune.storage.tables import metadata

        db = make_engine(args.database_url)
        metadata.drop_all(db)
        with db.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        store = f"{db.dialect.name} store"
    else:
        path = f"{tempfile.mkdtemp(prefix='attune-bench-seg-')}/bench.db"
        db = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
        store = "SQLite store, synchronous=NORMAL"
    upgrade(db)
    refused = {f"u:u{i}" for i in range(0, args.people, 7)} | {
        f"u:p{i:07d}" for i in range(0, args.people, 7)
    }
    engine = SegmentEngine(db, None, allows=lambda key, purpose: key not in refused)
    engine.load()
    engine.apply_definitions(
        {k: (v if isinstance(v, dict) else {"rule": v}) for k, v in RULES.items()}, reevaluate=False
    )
    lake_dir = args.lake or Path(tempfile.mkdtemp(prefix="attune-bench-lake-"))
    if args.synthetic:
        columns = synthesize(engine, args.people)
        engine.offline = lambda refs, as_of: columns
        as_of = time.time()
        source = "random feature columns"
    else:
        engine.offline, as_of = lake_offline(lake_dir, args.people)
        source = f"features from the lake {lake_dir} (8 events/person)"
    print(f"{len(RULES)} segments, {args.people:,} people, {source}; {store}")
    cold = timed("from empty (every membership an entry)", engine, as_of=as_of)
    timed("again: nothing to change", engine, as_of=as_of)
    engine.apply_definitions({"views_7d": {"rule": "count(view, window=7d) >= 1"}}, reevaluate=False)
    timed("one rule changed (views_7d >= 1)", engine, as_of=as_of)
    wall, cpu = time.perf_counter(), time.process_time()
    fresh = SegmentEngine(db, None)
    fresh.load()
    assert fresh.sizes() == engine.sizes(), "the store holds what memory holds"
    print(
        f"reload from the store: {time.perf_counter() - wall:.1f} s wall {time.process_time() - cpu:.1f} s CPU"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"memberships held: {sum(engine.sizes().values()):,} (entered from empty: {cold['entered']:,}); "
        f"peak RSS {rss / 2**20:.0f} MiB"
    )
    memory_per_profile()


if __name__ == "__main__":
    main()
