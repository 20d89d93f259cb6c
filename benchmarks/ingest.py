"""Ingestion benchmark: sustained batch throughput, single-event latency, memory, consumer lag.

Starts ``attune serve`` as a child process (temp data dir, free port; a fresh PostgreSQL
database for ``--backend postgresql``) and drives it from this process, so the load
generator never shares the server's interpreter. Request bodies are serialized with orjson
before the clock starts; per request only a fixed-width id marker is replaced (a C-level
``bytes.replace``), so every event id is unique without costing the client a JSON encode.

Phases, per backend:
  -. disk alone: ``--disk-alone`` seconds of the disk flush probe (below) before the server
              starts, with nothing of Attune's running: how much this disk stalls by itself.
  0. warm-up: ``--warmup`` seconds of batches (uncounted), wait for the consumers, then
              ``--settle`` seconds (their periodic flush runs).
  1. steady latency: single-event POSTs on an open-loop schedule of ``--rate`` requests/s for
              ``--latency-seconds`` against the warmed, caught-up server; latency is measured
              from the *scheduled* send time, so a stalled server cannot hide behind a client
              that waits (no coordinated omission).
  2. batch:   ``--connections`` keep-alive connections POST batches of ``--batch-size`` events
              back to back for ``--seconds``; events/s counts acknowledged events only.
  3. catch-up: poll ``/readyz`` until every consumer's lag is 0 (the time it took is reported).
  4. latency after the burst: phase 1 again, right after the catch-up, while the consumers
              write out what the burst changed.
  5. memory:  the server's resident set (VmRSS) and its peak (VmHWM) from /proc.

During each latency phase (1 and 4, not the batch phase) a disk flush probe runs in this
process: every 20 ms it overwrites 600 bytes of a preallocated 4 MiB file in the server's data
directory and times ``fdatasync``. The server fsyncs each commit before it acknowledges an
event, so a flush stall of the disk delays every request that arrives during it; the probe's
p50 / p99 / max and its stall time (the sum of each flush's excess over 10 ms, and how many
flushes exceeded it) show that floor beside the latency figures, which no server code can
lower. (For ``--backend postgresql`` the probe's file is in the benchmark's temp directory,
not in PostgreSQL's own data directory.) The row "p50 / p99 outside disk stalls" leaves out
the requests that were in flight while the probe saw a flush over 10 ms (how many, in
brackets): it shows the server's own share of the latency, while the raw p99 above it, stalls
included, is the figure that counts for users.

While appends arrive, ``attune serve`` lets its consumers fall behind (they share the
process and its GIL with ingest) and catch up afterwards; the lag at the end of the batch
phase and the catch-up time say how far behind they were. The machine's load average is
printed too: on a shared 2-core machine, other work moves these figures a lot.

Usage: ``.venv/bin/python benchmarks/ingest.py --backend both`` (``--sqlite-synchronous
NORMAL`` to see what fsync-per-commit durability costs on the embedded store,
``--no-pseudonymize`` to see what HMAC pseudonyms of every id cost).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _diskprobe import DiskFlushProbe
from _openloop import OpenLoopResult, open_loop, pct, request_bytes
from _server import BenchServer

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
EVENT_TYPES = ["view", "page_view", "click", "add_to_cart", "purchase", "rating", "search"]
TYPE_WEIGHTS = [45, 20, 15, 8, 4, 4, 4]
CATEGORIES = ["drama", "comedy", "news", "sports", "music", "kids", "docs"]
# Replaced per request by a unique sequence number of the same width.
MARKER = b"@@@@@@@@@@@@"
TEMPLATES = 64


def make_event(rng: random.Random, index: int, now: float) -> dict:
    """One realistic native event; its event id carries MARKER for per-request uniqueness."""
    event_type = rng.choices(EVENT_TYPES, TYPE_WEIGHTS)[0]
    person = rng.randrange(20_000)
    item = rng.randrange(5_000)
    category = CATEGORIES[item % len(CATEGORIES)]
    event: dict = {
        "event_id": f"{MARKER.decode()}-{index:04d}",
        "type": event_type,
        "anonymous_id": f"anon-{person:06d}",
        "timestamp": datetime.fromtimestamp(now - rng.uniform(0, 3600), UTC).isoformat(),
        "context": {
            "user_agent": USER_AGENTS[person % len(USER_AGENTS)],
            "ip": f"10.{person % 200}.{item % 200}.{index % 200}",
            "page": {
                "url": f"https://shop.example/{category}/item-{item}",
                "referrer": "https://www.example.org/search?q=" + category,
            },
        },
    }
    if rng.random() < 0.7:
        event["user_id"] = f"user-{person:06d}"
    if rng.random() < 0.5:
        event["context"]["session_id"] = f"s-{person:06d}-{int(now) // 1800}"
    if event_type == "search":
        event["properties"] = {
            "query": f"{category} {rng.choice(['new', 'best', 'cheap'])}",
            "results": rng.randrange(50),
        }
    else:
        event["item_id"] = f"item-{item:05d}"
        event["properties"] = {"category": category, "position": rng.randrange(1, 30), "list": "home"}
    if event_type in ("purchase", "add_to_cart"):
        event["value"] = round(rng.uniform(3, 120), 2)
        event["properties"]["currency"] = "EUR"
    elif event_type == "rating":
        event["value"] = float(rng.randrange(1, 6))
    return event


class Bodies:
    """Pre-serialized request bodies; :meth:`next` returns one with fresh, unique event ids."""

    def __init__(self, batch_size: int, seed: int) -> None:
        rng = random.Random(seed)
        now = time.time()
        self._templates = [
            orjson.dumps({"events": [make_event(rng, i, now) for i in range(batch_size)]})
            for _ in range(TEMPLATES)
        ]
        self._seq = itertools.count()
        self._prefix = f"{seed:02d}"

    def next(self) -> bytes:
        """The next body (thread-safe: ``itertools.count`` advances atomically under the GIL)."""
        n = next(self._seq)
        stamp = f"{self._prefix}{n:010d}".encode()
        return self._templates[n % TEMPLATES].replace(MARKER, stamp)


@dataclass
class BatchResult:
    """Figures of the sustained batch phase."""

    seconds: float = 0.0
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Acknowledged events per second over the phase."""
        return self.accepted / self.seconds if self.seconds else 0.0


def run_batches(url: str, key: str, bodies: Bodies, seconds: float, connections: int) -> BatchResult:
    """POST batches back to back on ``connections`` keep-alive connections for ``seconds``."""
    result = BatchResult()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    start = time.perf_counter()
    deadline = start + seconds
    finished: list[float] = []

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            while time.perf_counter() < deadline:
                body = bodies.next()
                sent = time.perf_counter()
                try:
                    response = client.post("/v1/events", content=body)
                except httpx.HTTPError:
                    with lock:
                        result.errors += 1
                    continue
                elapsed = time.perf_counter() - sent
                with lock:
                    result.requests += 1
                    result.latencies.append(elapsed)
                    if response.status_code == 200:
                        answer = orjson.loads(response.content)
                        result.accepted += answer["accepted"]
                        result.duplicates += answer["duplicates"]
                        result.rejected += len(answer["rejected"])
                    else:
                        result.errors += 1
        with lock:
            finished.append(time.perf_counter())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = max(finished) - start
    return result


def run_latency(url: str, key: str, rate: float, seconds: float, seed: int) -> OpenLoopResult:
    """Single-event POSTs at ``rate`` per second, open loop, for ``seconds``."""
    bodies = Bodies(1, seed)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def next_request() -> bytes:
        return request_bytes(url, "POST", "/v1/events", headers, bodies.next())

    def accepted(status: int, body: bytes) -> bool:
        return status == 200 and orjson.loads(body)["accepted"] == 1

    return open_loop(url, next_request, accepted, rate=rate, seconds=seconds)


def _latency_phase(
    server: BenchServer, args: argparse.Namespace, backend: str, name: str, seed: int
) -> tuple[OpenLoopResult, float, DiskFlushProbe]:
    """One single-event latency phase: its result, the server CPU seconds it took, and the
    (finished) :class:`DiskFlushProbe` that timed the disk's flushes meanwhile."""
    print(f"[{backend}] {name}: {args.rate:.0f} req/s for {args.latency_seconds:.0f}s…", file=sys.stderr)
    with DiskFlushProbe(server.data_dir) as probe:
        cpu_before = server.cpu_seconds()
        result = run_latency(server.url, server.key, args.rate, args.latency_seconds, seed=seed)
        cpu = server.cpu_seconds() - cpu_before
    return result, cpu, probe


def disk_alone(seconds: float) -> dict:
    """The flush probe's figures over ``seconds`` before the server starts (nothing of Attune's
    running): how often this disk stalls a flush by itself."""
    if seconds <= 0:
        return {
            name: float("nan") for name in ("samples", "p50_ms", "p99_ms", "max_ms", "stall_ms", "stalls")
        }
    print(f"disk alone: {seconds:.0f}s of the flush probe before the server starts…", file=sys.stderr)
    with DiskFlushProbe(tempfile.gettempdir()) as probe:
        time.sleep(seconds)
    return probe.summary()


def disk_figures(prefix: str, summary: dict) -> dict:
    """A :meth:`DiskFlushProbe.summary` as result keys ``{prefix}_disk_…``."""
    return {f"{prefix}_disk_{name}": value for name, value in summary.items()}


def outside_stalls(prefix: str, result: OpenLoopResult, stalls: list[tuple[float, float]]) -> dict:
    """p50 / p99 of the requests in flight during none of ``stalls`` (keys
    ``{prefix}_outside_stalls_…``), and how many requests were left out.

    A request, in flight from its scheduled time to its answer, overlaps a stall when it
    started before the stall ended and finished after the stall began.
    """
    kept = [
        latency
        for start, latency in zip(result.scheduled, result.latencies, strict=True)
        if not any(start < end and start + latency > begin for begin, end in stalls)
    ]
    return {
        f"{prefix}_outside_stalls_p50_ms": pct(kept, 0.50),
        f"{prefix}_outside_stalls_p99_ms": pct(kept, 0.99),
        f"{prefix}_outside_stalls_excluded": len(result.latencies) - len(kept),
    }


def readyz(url: str) -> dict:
    """The server's readiness answer (log head and each consumer's lag)."""
    return httpx.get(f"{url}/readyz", timeout=30).json()


def max_lag(ready: dict) -> int:
    """The largest consumer lag in a /readyz answer."""
    return max((c["lag"] for c in ready.get("consumers", {}).values()), default=0)


def wait_workers_ready(url: str, timeout: float) -> int:
    """Wait until the server's ingest workers take batches; return how many run (0: none)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = readyz(url).get("ingest_workers")
        if workers is None or workers["ready"] or time.monotonic() > deadline:
            return 0 if workers is None else workers["running"]
        time.sleep(0.2)


def wait_caught_up(url: str, timeout: float) -> tuple[float, int]:
    """Seconds until every consumer's lag is 0 (``inf`` on timeout) and the log head then."""
    start = time.perf_counter()
    while True:
        ready = readyz(url)
        if max_lag(ready) == 0:
            return time.perf_counter() - start, ready["log_head"]
        if time.perf_counter() - start > timeout:
            return float("inf"), ready["log_head"]
        time.sleep(0.1)


def bench(backend: str, args: argparse.Namespace) -> dict:
    """Run every phase against one fresh server of ``backend``; return the figures."""
    print(f"[{backend}] starting server…", file=sys.stderr)
    env = {"ATTUNE_SQLITE_SYNCHRONOUS": args.sqlite_synchronous}
    if args.no_pseudonymize:
        env["ATTUNE_PRIVACY__PSEUDONYMIZE"] = "false"
    load_before = os.getloadavg()[0]
    alone = disk_alone(args.disk_alone)
    serve_args = [] if args.ingest_workers is None else ["--ingest-workers", str(args.ingest_workers)]
    with BenchServer(backend, env=env, serve_args=serve_args) as server:
        workers = wait_workers_ready(server.url, args.catchup_timeout)
        bodies = Bodies(args.batch_size, seed=1)
        if args.warmup > 0:
            run_batches(server.url, server.key, bodies, args.warmup, args.connections)
            wait_caught_up(server.url, args.catchup_timeout)
        # Settled: the consumers' periodic flush of what the warm-up changed has run.
        time.sleep(args.settle)
        steady, steady_cpu, steady_disk = _latency_phase(server, args, backend, "steady latency", seed=4)
        print(
            f"[{backend}] batch phase: {args.seconds:.0f}s, {args.connections} connections…", file=sys.stderr
        )
        cpu_before = server.cpu_seconds()
        batch = run_batches(server.url, server.key, bodies, args.seconds, args.connections)
        batch_cpu = server.cpu_seconds() - cpu_before
        lag_at_end = max_lag(readyz(server.url))
        memory_after_batch = server.memory()
        catchup_seconds, head = wait_caught_up(server.url, args.catchup_timeout)
        latency, latency_cpu, latency_disk = _latency_phase(
            server, args, backend, "latency after the burst", seed=2
        )
        latency_catchup, head = wait_caught_up(server.url, args.catchup_timeout)
        memory = server.memory()
    return {
        "backend": (backend if backend != "sqlite" else f"sqlite ({args.sqlite_synchronous})")
        + (", raw ids" if args.no_pseudonymize else ""),
        "load_average": f"{load_before:.2f} → {os.getloadavg()[0]:.2f}",
        "alone_seconds": args.disk_alone,
        **disk_figures("alone", alone),
        "ingest_workers": workers,
        "events_per_second": batch.events_per_second,
        "batch_requests": batch.requests,
        "batch_accepted": batch.accepted,
        "batch_duplicates": batch.duplicates,
        "batch_rejected": batch.rejected,
        "batch_errors": batch.errors,
        "batch_seconds": batch.seconds,
        "batch_p50_ms": pct(batch.latencies, 0.50),
        "batch_p99_ms": pct(batch.latencies, 0.99),
        "lag_at_end": lag_at_end,
        "batch_server_cores": batch_cpu / batch.seconds if batch.seconds else float("nan"),
        "single_server_cpu_ms": latency_cpu / latency.sent * 1000 if latency.sent else float("nan"),
        "steady_server_cpu_ms": steady_cpu / steady.sent * 1000 if steady.sent else float("nan"),
        "steady_sent": steady.sent,
        "steady_ok": steady.ok,
        "steady_errors": steady.errors,
        "steady_p50_ms": pct(steady.latencies, 0.50),
        "steady_p95_ms": pct(steady.latencies, 0.95),
        "steady_p99_ms": pct(steady.latencies, 0.99),
        "steady_max_ms": max(steady.latencies, default=float("nan")) * 1000,
        **disk_figures("steady", steady_disk.summary()),
        **outside_stalls("steady", steady, steady_disk.stall_intervals()),
        "catchup_seconds": catchup_seconds,
        "single_sent": latency.sent,
        "single_ok": latency.ok,
        "single_errors": latency.errors,
        "single_p50_ms": pct(latency.latencies, 0.50),
        "single_p95_ms": pct(latency.latencies, 0.95),
        "single_p99_ms": pct(latency.latencies, 0.99),
        "single_max_ms": max(latency.latencies, default=float("nan")) * 1000,
        "single_mean_ms": statistics.fmean(latency.latencies) * 1000 if latency.latencies else float("nan"),
        "client_send_lag_p99_ms": pct(latency.send_lag, 0.99),
        **disk_figures("single", latency_disk.summary()),
        **outside_stalls("single", latency, latency_disk.stall_intervals()),
        "single_catchup_seconds": latency_catchup,
        "single_error_samples": latency.error_samples[:3] + steady.error_samples[:3],
        "rss_after_batch_mib": memory_after_batch["VmRSS"] / 2**20,
        "rss_end_mib": memory["VmRSS"] / 2**20,
        "rss_peak_mib": memory["VmHWM"] / 2**20,
        "log_head": head,
    }


ROWS = [
    ("ingest worker processes", "ingest_workers", "{:d}"),
    ("batch ingestion (events/s)", "events_per_second", "{:,.0f}"),
    ("  requests / accepted", None, None),
    ("  duplicates / rejected / errors", None, None),
    ("  batch request p50 / p99 (ms)", None, None),
    ("  server CPU (cores busy)", "batch_server_cores", "{:.2f}"),
    ("  consumer lag at end (events)", "lag_at_end", "{:,}"),
    ("  consumer catch-up (s)", "catchup_seconds", "{:.1f}"),
    ("steady single-event POST p50 (ms)", "steady_p50_ms", "{:.2f}"),
    ("steady single-event POST p95 (ms)", "steady_p95_ms", "{:.2f}"),
    ("steady single-event POST p99 (ms)", "steady_p99_ms", "{:.2f}"),
    ("steady single-event POST max (ms)", "steady_max_ms", "{:.2f}"),
    ("  steady sent / ok / errors", None, None),
    ("  server CPU per request (ms)", "steady_server_cpu_ms", "{:.2f}"),
    ("  disk fdatasync p50 / p99 / max (ms)", "steady", None),
    ("  disk stall time over 10 ms (ms / flushes)", "steady", None),
    ("  p50 / p99 outside disk stalls (ms, requests excluded)", "steady", None),
    ("after-burst single-event POST p50 (ms)", "single_p50_ms", "{:.2f}"),
    ("after-burst single-event POST p95 (ms)", "single_p95_ms", "{:.2f}"),
    ("after-burst single-event POST p99 (ms)", "single_p99_ms", "{:.2f}"),
    ("after-burst single-event POST max (ms)", "single_max_ms", "{:.2f}"),
    ("  sent / ok / errors", None, None),
    ("  client send lag p99 (ms)", "client_send_lag_p99_ms", "{:.2f}"),
    ("  server CPU per request (ms)", "single_server_cpu_ms", "{:.2f}"),
    ("  disk fdatasync p50 / p99 / max (ms)", "single", None),
    ("  disk stall time over 10 ms (ms / flushes)", "single", None),
    ("  p50 / p99 outside disk stalls (ms, requests excluded)", "single", None),
    ("disk alone, before the server starts (s)", "alone_seconds", "{:.0f}"),
    ("  disk fdatasync p50 / p99 / max (ms)", "alone", None),
    ("  disk stall time over 10 ms (ms / flushes)", "alone", None),
    ("server RSS after batch (MiB, with workers)", "rss_after_batch_mib", "{:.0f}"),
    ("server RSS at end (MiB)", "rss_end_mib", "{:.0f}"),
    ("server peak RSS (MiB, sum of peaks)", "rss_peak_mib", "{:.0f}"),
    ("machine load average (1 min)", "load_average", "{}"),
]


def cell(result: dict, label: str, key: str | None, fmt: str | None) -> str:
    """One table cell (for a disk probe row, ``key`` is the phase's key prefix)."""
    if key is not None and fmt is not None:
        return fmt.format(result[key])
    if key is not None and label.strip().startswith("disk fdatasync"):
        p50, p99, top = (result[f"{key}_disk_{q}_ms"] for q in ("p50", "p99", "max"))
        return f"{p50:.2f} / {p99:.2f} / {top:.1f}"
    if key is not None and label.strip().startswith("disk stall"):
        return f"{result[f'{key}_disk_stall_ms']:.0f} / {result[f'{key}_disk_stalls']}"
    if key is not None and label.strip().startswith("p50 / p99 outside"):
        p50, p99, excluded = (result[f"{key}_outside_stalls_{q}"] for q in ("p50_ms", "p99_ms", "excluded"))
        return f"{p50:.2f} / {p99:.2f} ({excluded})"
    if label.strip().startswith("requests"):
        return f"{result['batch_requests']:,} / {result['batch_accepted']:,}"
    if label.strip().startswith("duplicates"):
        return f"{result['batch_duplicates']} / {result['batch_rejected']} / {result['batch_errors']}"
    if label.strip().startswith("batch request"):
        return f"{result['batch_p50_ms']:.0f} / {result['batch_p99_ms']:.0f}"
    if label.strip().startswith("steady sent"):
        return f"{result['steady_sent']:,} / {result['steady_ok']:,} / {result['steady_errors']}"
    return f"{result['single_sent']:,} / {result['single_ok']:,} / {result['single_errors']}"


def print_table(results: list[dict], args: argparse.Namespace) -> None:
    """The figures, one column per backend."""
    print(
        f"\nAttune ingestion benchmark: batches of {args.batch_size} on {args.connections} connections "
        f"for {args.seconds:.0f}s; single events at {args.rate:.0f}/s for {args.latency_seconds:.0f}s"
    )
    width = max(len(label) for label, _, _ in ROWS) + 2
    header = "".ljust(width) + "".join(r["backend"].rjust(22) for r in results)
    print(header)
    print("-" * len(header))
    for label, key, fmt in ROWS:
        print(label.ljust(width) + "".join(cell(r, label, key, fmt).rjust(22) for r in results))
    for result in results:
        for sample in result["single_error_samples"]:
            print(f"  {result['backend']} error: {sample}")


def main() -> None:
    """Parse arguments, run the chosen backends, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of the batch phase.")
    parser.add_argument("--batch-size", type=int, default=1000, help="Events per batch request.")
    parser.add_argument("--connections", type=int, default=4, help="Concurrent batch connections.")
    parser.add_argument("--rate", type=float, default=200.0, help="Single-event requests per second.")
    parser.add_argument("--latency-seconds", type=float, default=15.0, help="Length of the latency phase.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Uncounted batch warm-up, seconds.")
    parser.add_argument(
        "--settle",
        type=float,
        default=6.0,
        help="Pause after the warm-up's catch-up, before the steady phase.",
    )
    parser.add_argument("--catchup-timeout", type=float, default=300.0, help="Longest wait for consumers.")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=["FULL", "NORMAL"],
        default="FULL",
        help="SQLite durability for the embedded store (the server's default is FULL).",
    )
    parser.add_argument(
        "--no-pseudonymize",
        action="store_true",
        help="Store raw ids (stores made by `attune init` pseudonymize them by default).",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=None,
        help="`attune serve --ingest-workers N` (default: the server's own, one per core).",
    )
    parser.add_argument(
        "--disk-alone",
        type=float,
        default=15.0,
        help="Seconds of the disk flush probe before each server starts, nothing else running (0: skip).",
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [bench(backend, args) for backend in backends]
    print_table(results, args)
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
