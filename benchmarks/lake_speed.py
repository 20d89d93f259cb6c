"""Lake speed: events/s of the lake consumer writing Parquet, and a daily_item_stats query over them.

    .venv/bin/python benchmarks/lake_speed.py [--events 500000] [--batch 5000] [--flush-events 50000]

Events are synthetic (deterministic by seed): 30 days, 20,000 people, 5,000 items, a funnel
of view/click/add_to_cart/purchase with device, geo, page and properties, as the pipeline
would hand them over (batches of ``--batch`` from the log). The consumer's own work is
timed: buffering, Arrow conversion, zstd Parquet and the atomic renames; reading the log is not.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from attune.events.model import Event, LoggedEvent
from attune.lake.consumer import LakeConsumer
from attune.lake.query import connect
from attune.settings import load_settings

START = 1_735_689_600.0  # 2025-01-01T00:00:00Z
DAYS = 30
TYPES = ("view", "view", "view", "view", "click", "click", "add_to_cart", "purchase", "rating", "page_view")
DEVICES = (
    {"type": "mobile", "os": "iOS", "browser": "Mobile Safari"},
    {"type": "desktop", "os": "Windows", "browser": "Chrome"},
    {"type": "tablet", "os": "Android", "browser": "Chrome Mobile"},
)
PLACES = ({"country": "DE", "city": "Berlin"}, {"country": "FR", "city": "Paris"}, {"country": "US"})


def synthetic_events(n: int, seed: int = 42) -> list[LoggedEvent]:
    """``n`` logged events in time (and offset) order."""
    rng = random.Random(seed)
    times = sorted(START + rng.random() * DAYS * 86400 for _ in range(n))
    out = []
    for offset, ts in enumerate(times, start=1):
        kind = rng.choice(TYPES)
        user = rng.randrange(20_000)
        item = rng.randrange(5_000)
        out.append(
            LoggedEvent(
                offset,
                Event(
                    event_id=f"e{offset:09d}",
                    type=kind,
                    timestamp=ts,
                    received_at=ts + 0.5,
                    user_id=f"u{user}" if user % 4 else None,
                    anonymous_id=f"a{user}",
                    item_id=None if kind == "page_view" else f"i{item}",
                    value=round(rng.uniform(5, 200), 2)
                    if kind == "purchase"
                    else (float(rng.randint(1, 5)) if kind == "rating" else None),
                    session_id=f"s{user}-{int(ts // 1800)}",
                    context={
                        "device": DEVICES[user % 3],
                        "geo": PLACES[user % 3],
                        "page": {
                            "url": f"https://shop.example/items/{item}",
                            "referrer": "https://search.example/",
                        },
                        "source": "web",
                    },
                    properties={"category": f"c{item % 40}", "position": rng.randrange(20)},
                ),
            )
        )
    return out


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5000, help="events per handle() call")
    parser.add_argument("--flush-events", type=int, default=50_000, help="the consumer's flush threshold")
    args = parser.parse_args()

    print(f"generating {args.events:,} synthetic events…")
    events = synthetic_events(args.events)
    data_dir = Path(tempfile.mkdtemp(prefix="attune-lake-bench-"))
    try:
        settings = load_settings(data_dir=data_dir)
        consumer = LakeConsumer(settings.lake_dir, args.flush_events)
        durable = None
        started = time.perf_counter()
        for i in range(0, len(events), args.batch):
            # No SQL connection: the lake consumer keeps its state in files, not in the store.
            durable = consumer.handle(events[i : i + args.batch], None) or durable  # type: ignore[arg-type]
        durable = consumer.flush(None) or durable  # type: ignore[arg-type]
        write_seconds = time.perf_counter() - started
        if durable != len(events):
            raise SystemExit(f"consumer reported offset {durable} durable, expected {len(events)}")

        files = list((settings.lake_dir / "events").glob("*/*.parquet"))
        size = sum(f.stat().st_size for f in files)
        print(
            f"lake consumer: {len(events):,} events in {write_seconds:.2f}s = "
            f"{len(events) / write_seconds:,.0f} events/s "
            f"({len(files)} part files, {size / 1e6:.1f} MB zstd, {size / len(events):.0f} B/event)"
        )

        con = connect(settings)
        try:
            started = time.perf_counter()
            rows = con.sql("SELECT * FROM daily_item_stats").fetchall()
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            top = con.sql(
                "SELECT item_id, sum(views) AS views, sum(purchases) AS purchases, sum(revenue) AS revenue "
                "FROM daily_item_stats GROUP BY item_id ORDER BY revenue DESC LIMIT 10"
            ).fetchall()
            top_seconds = time.perf_counter() - started
            total = con.sql("SELECT count(*) FROM events").fetchall()[0][0]
        finally:
            con.close()
        if total != len(events):
            raise SystemExit(f"the lake holds {total} events, expected {len(events)}")
        print(f"daily_item_stats, all {len(rows):,} rows fetched: {first_seconds * 1000:.0f} ms")
        print(f"daily_item_stats, top 10 items by revenue over {DAYS} days: {top_seconds * 1000:.0f} ms")
        print(f"  best: {top[0][0]} with {top[0][3]:,.2f} revenue")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
