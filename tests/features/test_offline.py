"""Offline specifics: local time from a lake ``timezone`` column, identity links, categories, input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from attune.errors import ValidationFailed
from attune.features.offline import OfflineSource, offline_values
from attune.features.refs import FeatureRef
from attune.lake.layout import write_part
from attune.lake.schema import EVENT_SCHEMA

T = 1_767_225_600  # 2026-01-01 00:00:00 UTC, a Thursday
HOUR = FeatureRef("context", name="hour")
WEEKDAY = FeatureRef("context", name="weekday")
DAYPART = FeatureRef("context", name="daypart")
VIEWS = FeatureRef("count", "view")
DRAMA = FeatureRef("count", "view", category="drama")


def lake_with(tmp_path: Path, rows: list[dict], timezone: bool) -> Path:
    """A lake of ``rows`` (one day); with ``timezone``, the files carry a ``timezone`` column."""
    schema = EVENT_SCHEMA.append(pa.field("timezone", pa.string())) if timezone else EVENT_SCHEMA
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    columns["timestamp"] = columns["received_at"] = [r["ts"] * 1_000_000 for r in rows]
    columns["offset"] = list(range(1, len(rows) + 1))
    columns["event_id"] = [f"e{i}" for i in range(len(rows))]
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
    write_part(tmp_path, T // 86400, table)
    return tmp_path


def test_local_clock_reads_the_lake_timezone_column_when_present(tmp_path: Path) -> None:
    rows = [
        {"type": "view", "user_id": "ny", "ts": T + 60, "timezone": "America/New_York"},
        {"type": "view", "user_id": "utc", "ts": T + 60},
        {"type": "view", "user_id": "bad", "ts": T + 60, "timezone": "Mars/Olympus"},
    ]
    source = OfflineSource(lake_with(tmp_path, rows, timezone=True))
    got = offline_values(source, [HOUR, WEEKDAY, DAYPART], T + 3600)
    by_key = dict(zip(got.subject_keys.tolist(), range(3), strict=True))
    assert got.values[HOUR][by_key["u:ny"]] == 19 and got.values[WEEKDAY][by_key["u:ny"]] == "wednesday"
    assert got.values[DAYPART][by_key["u:ny"]] == "evening"
    for key in ("u:utc", "u:bad"):  # absent or unusable zone: UTC
        assert got.values[HOUR][by_key[key]] == 0 and got.values[WEEKDAY][by_key[key]] == "thursday"


def test_links_and_categories_are_applied(tmp_path: Path) -> None:
    rows = [
        {"type": "view", "anonymous_id": "d1", "item_id": "m1", "ts": T + 1},
        {"type": "view", "user_id": "u1", "item_id": "m2", "ts": T + 2},
        {"type": "view", "anonymous_id": "d2", "item_id": "m1", "ts": T + 3},
        {"type": "view", "anonymous_id": "d2", "item_id": "m1", "ts": T + 4000},  # after as_of
    ]
    source = OfflineSource(
        lake_with(tmp_path, rows, timezone=False),
        links={"a:d1": "u:u1"},
        categories={"m1": ["Drama"], "m2": ["comedy"]},
    )
    got = offline_values(source, [VIEWS, DRAMA], T + 3600)
    assert got.subject_keys.tolist() == ["a:d2", "u:u1"]
    assert got.values[VIEWS].tolist() == [1, 2] and got.values[DRAMA].tolist() == [1, 1]
    assert got.events == 3
    assert offline_values(source, [VIEWS], T).subject_keys.tolist() == []  # nothing yet at T


def test_empty_lake_gives_empty_arrays(tmp_path: Path) -> None:
    got = offline_values(OfflineSource(tmp_path), [VIEWS, HOUR], T)
    assert len(got.subject_keys) == 0 and got.values[VIEWS].dtype == np.int64


def test_refs_are_checked_like_online(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="longer than zero"):
        offline_values(OfflineSource(tmp_path), [FeatureRef("count", "view", window_seconds=0)], T)
