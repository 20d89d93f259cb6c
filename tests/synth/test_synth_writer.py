"""attune.synth.write_dataset: every file parses back to what was generated."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest

from attune.synth import SyntheticData, generate, write_dataset


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(seed=31, n_users=150, n_items=80)


@pytest.fixture(scope="module")
def paths(data: SyntheticData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_dataset(data, tmp_path_factory.mktemp("synth") / "out")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_writes_the_five_files(paths: dict[str, Path]) -> None:
    assert {name: p.name for name, p in paths.items()} == {
        "items": "items.csv",
        "users": "users.csv",
        "events": "events.jsonl",
        "interactions": "interactions.csv",
        "truth": "truth.json",
    }
    assert all(p.stat().st_size > 0 for p in paths.values())


def test_items_csv(data: SyntheticData, paths: dict[str, Path]) -> None:
    rows = read_csv(paths["items"])
    assert list(rows[0]) == ["item_id", "title", "category", "genres", "description", "price", "available"]
    assert [
        (
            r["item_id"],
            r["title"],
            r["category"],
            r["genres"],
            r["description"],
            float(r["price"]),
            r["available"] == "True",
        )
        for r in rows
    ] == [
        (i["item_id"], i["title"], i["category"], i["genres"], i["description"], i["price"], i["available"])
        for i in data.items
    ]


def test_users_csv(data: SyntheticData, paths: dict[str, Path]) -> None:
    rows = read_csv(paths["users"])
    assert list(rows[0]) == ["user_id", "age", "gender", "country", "city", "device"]
    assert [{**r, "age": int(r["age"])} for r in rows] == data.users


def test_events_jsonl_round_trips(data: SyntheticData, paths: dict[str, Path]) -> None:
    lines = paths["events"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == data.events


def test_interactions_csv(data: SyntheticData, paths: dict[str, Path]) -> None:
    rows = read_csv(paths["interactions"])
    assert list(rows[0]) == ["user_id", "item_id", "timestamp", "event_type", "value"]
    expected = [
        (
            e["user_id"],
            e["item_id"],
            int(datetime.fromisoformat(e["timestamp"]).timestamp()),
            e["type"],
            e.get("value"),
        )
        for e in data.events
        if "user_id" in e and "item_id" in e
    ]
    got = [
        (
            r["user_id"],
            r["item_id"],
            int(r["timestamp"]),
            r["event_type"],
            float(r["value"]) if r["value"] else None,
        )
        for r in rows
    ]
    assert got == expected
    assert {r["event_type"] for r in rows} == {"view", "click", "add_to_cart", "purchase", "rating"}


def test_truth_json(data: SyntheticData, paths: dict[str, Path]) -> None:
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    assert truth["seed"] == 31
    assert set(truth["rules"]) == {"casual", "drama_fans", "big_spenders", "mobile_browsers", "churned"}
    assert {u: v["segment"] for u, v in truth["users"].items()} == data.truth.segment_of
    assert {u: v["favourite_categories"] for u, v in truth["users"].items()} == data.truth.favourites
    assert truth["start"] == "2026-10-04T00:00:00Z" and truth["end"] == "2026-11-01T00:00:00Z"


def test_same_seed_writes_byte_identical_files(paths: dict[str, Path], tmp_path: Path) -> None:
    again = write_dataset(generate(seed=31, n_users=150, n_items=80), tmp_path)
    for name, path in paths.items():
        assert again[name].read_bytes() == path.read_bytes(), name
