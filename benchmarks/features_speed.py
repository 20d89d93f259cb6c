"""Features speed: consumer cost per event, memory per profile, offline time for a million people.

    .venv/bin/python benchmarks/features_speed.py [--profiles 1000000] [--events-per-profile 8]

Prints CPU time (``time.process_time``, robust on a shared machine) next to wall time.
1. consumer: µs/event of the features consumer (in-memory apply, then full ``handle`` with the
   identity-link query on SQLite), 200,000 events over 20,000 people;
2. memory: bytes per profile (tracemalloc) for 100,000 profiles of 10 events each;
3. offline: a synthetic lake of ``--profiles`` people is written as Parquet, then the features
   of 20 typical segment rules (34 refs) are computed for everyone at one instant.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa

from attune.consumers.features import FeaturesConsumer
from attune.events.model import Event, LoggedEvent
from attune.features.definitions import FeatureDefinitions
from attune.features.offline import OfflineSource, offline_values
from attune.features.refs import FeatureRef
from attune.features.store import FeatureStore
from attune.lake.layout import write_part
from attune.lake.schema import EVENT_SCHEMA
from attune.profiles.identity import SubjectKeys

NOW = 1_790_000_000.0
DAY = 86400.0
TYPES = ["view", "page_view", "click", "add_to_cart", "purchase", "share"]


def synthetic_events(n: int, people: int, seed: int = 0) -> list[LoggedEvent]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = TYPES[int(rng.integers(len(TYPES)))]
        out.append(
            LoggedEvent(
                i + 1,
                Event(
                    event_id=f"e{i}",
                    type=t,
                    timestamp=NOW - float(rng.integers(0, 30 * 86400)),
                    received_at=NOW,
                    user_id=f"u{int(rng.integers(people))}",
                    item_id=f"i{int(rng.integers(5000))}",
                    value=9.99 if t == "purchase" else None,
                    context={"device": {"type": ["mobile", "desktop"][i % 2]}, "geo": {"city": "Berlin"}},
                    properties={"dwell_seconds": 12} if t == "page_view" else {},
                ),
            )
        )
    return out


def bench_consumer() -> None:
    from attune.runtime import Runtime
    from attune.settings import load_settings

    events = synthetic_events(200_000, 20_000)
    consumer = FeaturesConsumer(SubjectKeys())
    started, cpu = time.perf_counter(), time.process_time()
    with consumer.store.lock:
        consumer._apply(events, {})
    cpu = time.process_time() - cpu
    print(
        f"consumer apply (in memory): {1e6 * cpu / len(events):.2f} µs/event CPU "
        f"({1e6 * (time.perf_counter() - started) / len(events):.2f} µs wall), {len(events):,} events"
    )
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.open(load_settings(data_dir=Path(tmp)))
        try:
            consumer = FeaturesConsumer(SubjectKeys())
            cpu = time.process_time()
            with runtime.engine.begin() as conn:
                for start in range(0, len(events), 5000):
                    consumer.handle(events[start : start + 5000], conn)
                handled_cpu = time.process_time() - cpu
                consumer.flush(conn)
            total_cpu = time.process_time() - cpu
        finally:
            runtime.close()
    print(
        f"consumer handle (links query, batches of 5000): {1e6 * handled_cpu / len(events):.2f} µs/event CPU; "
        f"with writing all 20,000 states: {1e6 * total_cpu / len(events):.2f} µs/event CPU"
    )
    store = consumer.store
    refs = [
        FeatureRef("count", "view", window_seconds=7 * DAY),
        FeatureRef("feature", name="engagement_score"),
        FeatureRef("sum", "purchase", field="value", window_seconds=30 * DAY),
        FeatureRef("context", name="device"),
    ]
    keys = list(store.persons)[:2000]
    cpu = time.process_time()
    for key in keys:
        store.values(key, refs, NOW)
    print(f"values() of 4 refs: {1e6 * (time.process_time() - cpu) / len(keys):.1f} µs/person CPU")
    everyone = list(store.persons)
    cpu = time.process_time()
    blobs = {key: store.dump(key) for key in everyone}
    dumped = time.process_time() - cpu
    fresh = FeatureStore(store.defs)
    cpu = time.process_time()
    for key, blob in blobs.items():
        fresh.load(key, blob)
    loaded = time.process_time() - cpu
    size = sum(len(b) for b in blobs.values()) / len(blobs)
    print(
        f"state: {size:.0f} bytes/person stored (avg {200_000 / len(everyone):.0f} events); "
        f"dump {1e6 * dumped / len(everyone):.1f} µs, load {1e6 * loaded / len(everyone):.1f} µs per person CPU"
    )


def bench_memory(profiles: int = 100_000, per: int = 10) -> None:
    rng = np.random.default_rng(1)
    tracemalloc.start()
    store = FeatureStore(FeatureDefinitions())
    base = tracemalloc.get_traced_memory()[0]
    codes = [store.type_code(t) for t in TYPES]
    ctx = store.context_code(("mobile", None, None, "DE", "Berlin", None))
    items = [store.item_code(f"i{i}") for i in range(5000)]
    ts = (NOW - rng.integers(0, 30 * 86400, size=profiles * per)) * 1_000_000
    for p in range(profiles):
        key = f"u:{p}"
        for j in range(per):
            n = p * per + j
            store.add(key, int(ts[n]), n, codes[n % 6], items[n % 5000], ctx, float("nan"), float("nan"))
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"memory: {used / profiles:.0f} bytes/profile ({profiles:,} profiles x {per} events; "
        f"{used / profiles / per:.1f} bytes/event incl. per-person overhead)"
    )


def write_lake(lake: Path, profiles: int, per: int, seed: int = 2) -> int:
    rng = np.random.default_rng(seed)
    n = profiles * per
    chunk = 2_000_000
    offset = 1
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        people = rng.integers(0, profiles, size=m)
        ts_us = ((NOW - rng.integers(0, 30 * 86400, size=m)) * 1_000_000).astype(np.int64)
        types = np.array(TYPES)[rng.integers(0, len(TYPES), size=m)]
        days = ts_us // (86400 * 1_000_000)
        cols = {
            "offset": np.arange(offset, offset + m, dtype=np.int64),
            "event_id": pa.array(np.char.add("e", np.arange(offset, offset + m).astype(str))),
            "type": pa.array(types),
            "user_id": pa.array(np.char.add("u", people.astype(str))),
            "anonymous_id": pa.nulls(m, pa.string()),
            "item_id": pa.array(np.char.add("i", rng.integers(0, 5000, size=m).astype(str))),
            "value": pa.array(np.where(types == "purchase", 9.99, np.nan), from_pandas=True),
            "timestamp": pa.array(ts_us, type=EVENT_SCHEMA.field("timestamp").type),
            "received_at": pa.array(ts_us, type=EVENT_SCHEMA.field("received_at").type),
            "device_type": pa.array(np.array(["mobile", "desktop"])[rng.integers(0, 2, size=m)]),
        }
        offset += m
        full = [cols.get(f.name, pa.nulls(m, f.type)) for f in EVENT_SCHEMA]
        table = pa.Table.from_arrays(
            [pa.array(c) if isinstance(c, np.ndarray) else c for c in full], schema=EVENT_SCHEMA
        )
        order = np.argsort(days, kind="stable")
        table, days = table.take(order), days[order]
        bounds = np.flatnonzero(np.diff(days)) + 1
        for part_days, lo, hi in zip(np.split(days, bounds), [0, *bounds], [*bounds, m], strict=True):
            part = table.slice(lo, hi - lo)
            # Part names must grow with offsets within a day; sort each part by offset.
            part = part.take(np.argsort(part.column("offset").to_numpy()))
            write_part(lake, int(part_days[0]), part)
    return n


def segment_refs() -> list[FeatureRef]:
    """The refs of 20 typical segment rules (issue 4's examples, varied)."""
    refs = []
    for w in (DAY, 7 * DAY, 30 * DAY):
        refs += [
            FeatureRef("count", t, window_seconds=w) for t in ("view", "purchase", "add_to_cart", "share")
        ]
        refs += [
            FeatureRef("sum", "purchase", field="value", window_seconds=w),
            FeatureRef("distinct", "view", window_seconds=w),
        ]
    refs += [FeatureRef("count", "view", window_seconds=7 * DAY, category=c) for c in ("drama", "comedy")]
    refs += [
        FeatureRef("feature", name=n)
        for n in ("engagement_score", "recency_days", "frequency", "monetary", "active_days")
    ]
    refs += [FeatureRef("context", name=n) for n in ("device", "city", "weekday")]
    return refs


def bench_offline(profiles: int, per: int, keep: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lake = keep or Path(tmp)
        if keep is None or not (lake / "events").is_dir():
            wall = time.perf_counter()
            events = write_lake(lake, profiles, per)
            print(
                f"synthetic lake: {events:,} events of {profiles:,} people written in {time.perf_counter() - wall:.1f} s"
            )
        categories = {f"i{i}": ("drama",) if i % 3 == 0 else ("comedy",) for i in range(5000)}
        source = OfflineSource(lake, {}, categories, SubjectKeys(), FeatureDefinitions())
        refs = segment_refs()
        cpu, wall = time.process_time(), time.perf_counter()
        result = offline_values(source, refs, NOW)
        print(
            f"offline features: {len(refs)} refs for {len(result.subject_keys):,} people over {result.events:,} events "
            f"in {time.perf_counter() - wall:.1f} s wall ({time.process_time() - cpu:.1f} s CPU, all DuckDB threads)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=int, default=8)
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--offline-only", action="store_true")
    parser.add_argument("--lake", type=Path, help="keep the synthetic lake here (reused when present)")
    args = parser.parse_args()
    if not args.offline_only:
        bench_consumer()
        bench_memory()
    if not args.skip_offline:
        bench_offline(args.profiles, args.events_per_profile, args.lake)


if __name__ == "__main__":
    main()
