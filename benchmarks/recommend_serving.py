"""Serving benchmark: GET /v1/users/{id}/recommendations at concurrency 32.

For each catalog size (default 10,000 and 100,000 items) the script writes a synthetic
interactions file (Zipf-popular items, users with 10–60 interactions), imports it, trains and
promotes a model (ALS by default: EASE cannot hold 100k items densely), starts
``attune serve`` as a child process and drives it from this process with 32 keep-alive
connections in a closed loop for ``--seconds``. It prints requests/s, p50/p99 latency, the
share of personalized answers and the server's memory.

Usage: ``.venv/bin/python benchmarks/recommend_serving.py [--items 10000 100000] [--model als]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _openloop import _exchange, _Pool, request_bytes
from _server import free_port, proc_memory

ATTUNE = str(Path(sys.executable).with_name("attune"))


def run(*args: str) -> str:
    """Run an attune command; its standard output."""
    done = subprocess.run([ATTUNE, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"attune {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def run_loop(coro):
    """Run ``coro`` on uvloop when installed (a cheaper client leaves more CPU to the server)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_interactions(path: Path, n_items: int, n_users: int, seed: int = 7) -> None:
    """Zipf-popular items; each user 10–60 interactions spread over 30 days."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    start = 1_790_000_000
    with path.open("w") as handle:
        handle.write("user_id,item_id,timestamp\n")
        for user in range(n_users):
            count = int(rng.integers(10, 61))
            items = rng.choice(n_items, size=count, replace=False, p=weights)
            times = np.sort(rng.integers(start, start + 30 * 86400, size=count))
            handle.writelines(f"u{user},i{item},{ts}\n" for item, ts in zip(items, times, strict=True))


async def closed_loop(url: str, key: str, users: list[str], concurrency: int, seconds: float) -> dict:
    """``concurrency`` workers send requests back to back; latencies in seconds."""
    host, port = url.rsplit("//", 1)[1].split(":")
    latencies: list[float] = []
    personalized = errors = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(seed: int) -> None:
        nonlocal personalized, errors
        pool = _Pool(host, int(port))
        rng = random.Random(seed)
        try:
            while time.perf_counter() < deadline:
                user = rng.choice(users)
                payload = request_bytes(url, "GET", f"/v1/users/{user}/recommendations?k=10", headers)
                started = time.perf_counter()
                status, body = await _exchange(pool, payload)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                elif b'"personalized":true' in body:
                    personalized += 1
        finally:
            pool.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "personalized": personalized / max(1, len(latencies)),
        "errors": errors,
    }


def bench(
    n_items: int,
    n_users: int,
    model: str,
    concurrency: int,
    seconds: float,
    keep: Path | None = None,
    no_body_cache: bool = False,
) -> dict:
    """Prepare one installation (or reuse ``keep``), serve it and measure."""
    data_dir = (
        keep / str(n_items)
        if keep is not None
        else Path(tempfile.mkdtemp(prefix=f"attune-serving-{n_items}-"))
    )
    try:
        started = time.perf_counter()
        if not (data_dir / "bench-key").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            csv_path = data_dir / "interactions.csv"
            write_interactions(csv_path, n_items, n_users)
            run("import", "interactions", str(csv_path), "--data-dir", str(data_dir))
            run("train", "--model", model, "--data-dir", str(data_dir))
            key = (
                run("keys", "create", "--scopes", "read", "--data-dir", str(data_dir))
                .strip()
                .splitlines()[-1]
            )
            (data_dir / "bench-key").write_text(key)
        key = (data_dir / "bench-key").read_text()
        prepared = time.perf_counter() - started
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [ATTUNE, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ATTUNE_SERVING__CACHE_BODIES": "false" if no_body_cache else "true"},
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            users = [f"u{i}" for i in range(n_users)] + [f"new{i}" for i in range(n_users // 20)]
            # The promoted model loads in the background (and, for large catalogs, builds its
            # ANN graphs after that): measure once it answers, not the start-up.
            ready_by = time.monotonic() + 300
            while time.monotonic() < ready_by:
                probe = httpx.get(
                    f"{url}/v1/users/u0/recommendations", headers={"Authorization": f"Bearer {key}"}
                )
                if b'"personalized":true' in probe.content and (
                    n_items <= 50_000 or "ANN graphs" in (data_dir / "server.log").read_text()
                ):
                    break
                time.sleep(0.5)
            # Warm-up: the promoted model loads in the background on the first requests.
            run_loop(closed_loop(url, key, users, 4, 5.0))
            cpu_before = proc_cpu_seconds(server.pid)
            client_before = time.process_time()
            result = run_loop(closed_loop(url, key, users, concurrency, seconds))
            result["client_cpu_ms"] = (
                1000 * (time.process_time() - client_before) / max(1, result["requests"])
            )
            # Server CPU per request: a figure the other tenants of a shared machine disturb less.
            result["cpu_ms"] = 1000 * (proc_cpu_seconds(server.pid) - cpu_before) / max(1, result["requests"])
            result["rss_mib"] = proc_memory(server.pid).get("VmRSS", 0) / 2**20
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        result["prepare_s"] = prepared
        return result
    finally:
        if keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--model", default="als")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-body-cache", action="store_true", help="Serve without per-person answer caching."
    )
    parser.add_argument(
        "--keep", type=Path, help="Prepare installations under this directory and reuse them."
    )
    args = parser.parse_args()
    rows = {
        n: bench(n, args.users, args.model, args.concurrency, args.seconds, args.keep, args.no_body_cache)
        for n in args.items
    }
    print(
        f"\nGET /v1/users/{{id}}/recommendations?k=10, model {args.model}, concurrency {args.concurrency}, "
        f"{args.seconds:.0f}s, answer cache {'off' if args.no_body_cache else 'on'}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'items':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'personal':>9} {'errors':>7} {'RSS MiB':>8} {'prep s':>7} {'CPU ms/req':>10} {'client ms':>9}"
    )
    for n, r in rows.items():
        print(
            f"{n:>9,} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['personalized']:>9.0%} "
            f"{r['errors']:>7} {r['rss_mib']:>8.0f} {r['prepare_s']:>7.1f} {r['cpu_ms']:>10.3f} {r['client_cpu_ms']:>9.3f}"
        )


if __name__ == "__main__":
    main()
