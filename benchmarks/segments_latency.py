"""Event acknowledgement -> membership visible, on a served embedded instance (``attune serve``).

Measured twice: in process (the embedded runtime with its consumer threads) and against
``attune serve`` (same pipeline: the realtime lane starts as soon as an append wakes it).
For each sample a new person sends one click (``POST /v1/events``, no ``wait``); the clock
starts when the answer arrives and stops when ``GET /v1/users/{id}/segments`` first shows the
segment the click puts them in. Prints p50/p90/p99 (target p99 < 20 ms) and, measured in this
process on an engine holding 100,000 people, the server-side cost of the membership read.

    .venv/bin/python benchmarks/segments_latency.py [--samples 300] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import BenchServer  # noqa: E402


def visible_latency(server: BenchServer, samples: int) -> list[float]:
    headers = {"Authorization": f"Bearer {server.key}"}
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        put = client.put("/v1/segments/clickers", json={"rule": "exists(click, window=1h)"})
        put.raise_for_status()
        for i in range(samples + 20):
            user = f"bench{i}"
            event = {"type": "click", "user_id": user, "item_id": f"i{i % 50}"}
            client.post("/v1/events", json={"events": [event]}).raise_for_status()
            acked = time.perf_counter()
            while True:
                body = client.get(f"/v1/users/{user}/segments").json()
                if body["segments"]:
                    break
                if time.perf_counter() - acked > 5:
                    raise RuntimeError(f"{user} never entered the segment")
                # A pause between polls: a tight loop of GETs would hold the server's GIL and
                # starve the consumer thread it is waiting for (resolution ~1 ms + one round trip).
                time.sleep(0.001)
            if i >= 20:  # warm-up
                latencies.append((time.perf_counter() - acked) * 1000)
    return latencies


def embedded_latency(samples: int) -> list[float]:
    """The same measure in process: ``Runtime`` with its consumer threads, no HTTP and no pacer.

    The clock starts when ``ingest`` returns (the append is committed) and stops when the
    engine's memory, which ``GET /v1/users/{id}/segments`` reads, shows the membership.
    """
    import tempfile

    from attune.runtime import Runtime
    from attune.settings import load_settings

    runtime = Runtime.open(load_settings(data_dir=Path(tempfile.mkdtemp(prefix="attune-bench-seg-"))))
    try:
        runtime.segments.apply_definitions({"clickers": {"rule": "exists(click, window=1h)"}})
        runtime.pipeline.start()
        latencies: list[float] = []
        for i in range(samples + 20):
            runtime.ingest.ingest([{"type": "click", "user_id": f"bench{i}", "item_id": f"i{i % 50}"}])
            acked = time.perf_counter()
            key = runtime.segments.resolve_user(f"bench{i}")
            while not runtime.segments.segments_of(key):
                time.sleep(0.0002)
                key = runtime.segments.resolve_user(f"bench{i}")
            if i >= 20:
                latencies.append((time.perf_counter() - acked) * 1000)
            time.sleep(0.01)  # one event at a time, as a person clicking would send them
        return latencies
    finally:
        runtime.close()


def read_cost(people: int = 100_000, calls: int = 200_000) -> float:
    """Microseconds per resolve + segments_of on an engine with ``people`` members (in process)."""
    import tempfile

    from attune.segments.engine import SegmentEngine
    from attune.segments.membership import Membership
    from attune.storage.engine import make_engine
    from attune.storage.migrate import upgrade

    db = make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    upgrade(db)
    engine = SegmentEngine(db, None)
    engine.load()
    engine._by_subject = {
        f"u:p{i}": (Membership("a", 1.0, 0.0), Membership("b", 0.5, 0.0)) for i in range(people)
    }
    ids = [f"p{i % people}" for i in range(calls)]
    started = time.process_time()
    for user_id in ids:
        [m.to_dict() for m in engine.segments_of(engine.resolve_user(user_id))]
    return (time.process_time() - started) / calls * 1e6


def report(what: str, latencies: list[float]) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(f"event ack -> membership visible, {what} ({len(latencies)} samples):")
    print(f"  p50 {q[49]:.1f} ms   p90 {q[89]:.1f} ms   p99 {q[98]:.1f} ms   max {latencies[-1]:.1f} ms  (target p99 < 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    embedded = sorted(embedded_latency(args.samples))
    report("embedded, in process, no HTTP", embedded)
    with BenchServer(args.backend) as server:
        served = sorted(visible_latency(server, args.samples))
    report(f"attune serve ({args.backend}), polling over HTTP", served)
    print(f"membership read, server side (resolve id + copy memberships + ISO times): {read_cost():.2f} µs CPU per call")


if __name__ == "__main__":
    main()
