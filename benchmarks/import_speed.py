"""Import speed on the embedded store: MovieLens 100k ``u.data`` and a synthetic interactions CSV.

Run from the repository root::

    .venv/bin/python benchmarks/import_speed.py [--rows 200000] [--ml100k PATH]

Each import runs into a fresh data directory in a temporary folder and prints rows per
second for the whole run (reading, validation, appending and the consumers catching up),
the catch-up share, and the speed of re-importing the same file (all duplicates).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from attune.importers import ImportResult, run_import
from attune.runtime import Runtime
from attune.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ML100K = REPO.parent / "shared" / "data" / "ml-100k" / "u.data"


def write_synthetic(path: Path, rows: int, seed: int = 7) -> Path:
    """An interactions CSV with ``rows`` rows: views, clicks and purchases over 90 days."""
    rng = random.Random(seed)
    start = 1_700_000_000
    with path.open("w", encoding="utf-8") as handle:
        handle.write("user_id,item_id,timestamp,event_type,value\n")
        for n in range(rows):
            kind = rng.choices(("view", "click", "purchase"), weights=(80, 15, 5))[0]
            value = f"{rng.uniform(5, 120):.2f}" if kind == "purchase" else ""
            ts = start + rng.randrange(90 * 86400)
            handle.write(f"u{rng.randrange(20_000)},i{rng.randrange(5_000)},{ts},{kind},{value}\n")
            if n % 50_000 == 0:
                handle.flush()
    return path


def measure(label: str, path: Path, work: Path) -> None:
    """Import ``path`` twice into a fresh installation and print the figures."""
    data_dir = work / f"data-{label}"
    runtime = Runtime.open(load_settings(data_dir=data_dir))
    try:
        cpu = time.process_time()
        first = run_import(runtime, "interactions", path)
        first_cpu = time.process_time() - cpu
        cpu = time.process_time()
        again = run_import(runtime, "interactions", path)
        again_cpu = time.process_time() - cpu
        landed = runtime.log.count()
    finally:
        runtime.close()
    _print(label, "first import", first, first_cpu)
    _print(label, "re-import", again, again_cpu)
    print(f"{label:>10}  events in the log after both: {landed:,}")


def _print(label: str, what: str, result: ImportResult, cpu: float) -> None:
    # CPU seconds next to wall seconds: on a shared machine the wall clock includes waiting.
    reading = result.seconds - result.catch_up_seconds
    print(
        f"{label:>10}  {what:<12} {result.rows:>9,} rows  {result.seconds:6.1f}s total, {cpu:5.1f}s CPU "
        f"({reading:5.1f}s read+validate+append, {result.catch_up_seconds:5.1f}s catch-up)  "
        f"{result.rows_per_second:>9,.0f} rows/s  accepted {result.accepted:,} duplicates {result.duplicates:,} "
        f"rejected {result.rejected:,}"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the synthetic CSV")
    parser.add_argument("--ml100k", type=Path, default=DEFAULT_ML100K, help="path of MovieLens u.data")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="attune-import-bench-") as tmp:
        work = Path(tmp)
        if args.ml100k.is_file():
            measure("ml-100k", args.ml100k, work)
        else:
            print(f"ml-100k: {args.ml100k} not found; skipped", file=sys.stderr)
        started = time.perf_counter()
        synthetic = write_synthetic(work / "interactions.csv", args.rows)
        print(f"synthetic: wrote {args.rows:,} rows in {time.perf_counter() - started:.1f}s")
        measure("synthetic", synthetic, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
