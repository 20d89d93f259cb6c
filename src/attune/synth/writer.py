"""Write a synthetic data set to files: items, users, events, interactions and the truth."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import orjson

from attune.synth.generator import SyntheticData
from attune.synth.table import TYPES

ITEM_COLUMNS = ("item_id", "title", "category", "genres", "description", "price", "available")
USER_COLUMNS = ("user_id", "age", "gender", "country", "city", "device")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "value")

_LINES_PER_WRITE = 20_000


def write_dataset(data: SyntheticData, out_dir: Path) -> dict[str, Path]:
    """Write ``items.csv``, ``users.csv``, ``events.jsonl``, ``interactions.csv`` and ``truth.json``.

    ``events.jsonl`` holds every native event, one per line, in timestamp order.
    ``interactions.csv`` holds the events that carry both a ``user_id`` and an ``item_id``,
    with the timestamp as integer epoch seconds and an empty value when there is none.
    Returns the written paths by name (``items``, ``users``, ``events``, ``interactions``,
    ``truth``). The directory is created if needed; existing files are replaced.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "items": out_dir / "items.csv",
        "users": out_dir / "users.csv",
        "events": out_dir / "events.jsonl",
        "interactions": out_dir / "interactions.csv",
        "truth": out_dir / "truth.json",
    }
    _write_csv(paths["items"], ITEM_COLUMNS, ([r[c] for c in ITEM_COLUMNS] for r in data.catalog.records()))
    _write_csv(
        paths["users"], USER_COLUMNS, ([r[c] for c in USER_COLUMNS] for r in data.population.records())
    )
    _write_events(paths["events"], data)
    _write_interactions(paths["interactions"], data)
    paths["truth"].write_bytes(orjson.dumps(data.truth.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return paths


def _write_csv(path: Path, header: tuple[str, ...], rows: object) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)  # type: ignore[arg-type]


def _write_events(path: Path, data: SyntheticData) -> None:
    dumps = orjson.dumps
    with path.open("wb") as handle:
        lines: list[bytes] = []
        for event in data.iter_events():
            lines.append(dumps(event))
            if len(lines) >= _LINES_PER_WRITE:
                handle.write(b"\n".join(lines) + b"\n")
                lines.clear()
        if lines:
            handle.write(b"\n".join(lines) + b"\n")


def _write_interactions(path: Path, data: SyntheticData) -> None:
    table = data.table
    rows = np.flatnonzero(table.known & (table.item >= 0))
    user_ids, item_ids = data.population.user_ids, data.catalog.item_ids
    values = ["" if math.isnan(v) else repr(v) for v in table.value[rows].tolist()]
    _write_csv(
        path,
        INTERACTION_COLUMNS,
        zip(
            [user_ids[u] for u in table.user[rows].tolist()],
            [item_ids[i] for i in table.item[rows].tolist()],
            table.timestamp[rows].tolist(),
            [TYPES[t] for t in table.type[rows].tolist()],
            values,
            strict=True,
        ),
    )
