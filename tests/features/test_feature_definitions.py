"""Feature definitions refuse what they cannot answer exactly, with messages naming the fault."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attune.errors import ConfigError, ValidationFailed
from attune.features.categories import item_categories
from attune.features.definitions import FeatureDefinitions, parse_duration
from attune.features.named import engagement_score, local_clock
from attune.features.refs import FeatureRef
from attune.features.store import FeatureStore
from attune.settings import load_settings

DAY = 86400.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), (30, 30)]
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0h", "-1d", "1w", "", "soon", 0, True])
def test_bad_durations_are_refused(text) -> None:
    with pytest.raises(ConfigError, match="window"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (FeatureRef("count", "view", window_seconds=0), "longer than zero"),
        (FeatureRef("count", "view", window_seconds=-5), "longer than zero"),
        (FeatureRef("count", "view", window_seconds=90 * DAY), "longer than the longest feature window 30d"),
        (FeatureRef("feature", name="karma"), "unknown feature 'karma'"),
        (FeatureRef("context", name="planet"), "unknown context attribute 'planet'"),
        (FeatureRef("sum", "purchase", field="price"), "cannot sum field 'price'"),
        (FeatureRef("trait", name="age"), "segments engine"),
        (FeatureRef("count"), "event type"),
    ],
)
def test_unanswerable_refs_are_refused(ref: FeatureRef, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        FeatureStore().values("u:x", [ref], time.time())


def test_settings_section_builds_definitions() -> None:
    settings = load_settings(features={"windows": ["2h", "3d"], "activity_window": "3d"})
    defs = FeatureDefinitions.from_settings(settings.features, settings.ingest.max_future_seconds)
    assert defs.windows == (7200.0, 3 * DAY) and defs.activity_window == 3 * DAY
    with pytest.raises(ConfigError, match="activity_window"):
        FeatureDefinitions(windows=(3600.0,), activity_window=DAY)
    with pytest.raises(ConfigError, match="engagement_weights: unknown feature 'karma'"):
        FeatureDefinitions(engagement_weights={"karma": 1.0})
    with pytest.raises(ConfigError, match="engagement_caps.frequency"):
        FeatureDefinitions(engagement_weights={"frequency": 1.0}, engagement_caps={"frequency": 0.0})


@given(
    st.dictionaries(
        st.sampled_from(["dwell_seconds", "share_rate", "active_days", "frequency", "monetary"]),
        st.one_of(st.floats(0, 1e9), st.just(float("nan"))),
    )
)
def test_engagement_score_stays_in_unit_interval(components) -> None:
    defs = FeatureDefinitions()
    full = {
        n: components.get(n, 0.0)
        for n in ("dwell_seconds", "share_rate", "active_days", "frequency", "monetary")
    }
    score = float(engagement_score(full, defs))
    assert 0.0 <= score <= 1.0
    # One person (scalars, the online path) and many (arrays, offline) compute the same bits.
    as_arrays = {n: np.array([v, 0.0]) for n, v in full.items()}
    assert float(engagement_score(as_arrays, defs)[0]) == score
    capped = {n: defs.engagement_caps.get(n, 1.0) * 2 for n in full}
    assert float(engagement_score(capped, defs)) == pytest.approx(1.0)


def test_local_clock_uses_the_time_zone() -> None:
    ts = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC, a Thursday
    assert local_clock(ts, None) == (0, 3)
    assert local_clock(ts, "America/New_York") == (19, 2)  # 19:00 on Wednesday
    assert local_clock(ts, "Not/AZone") == (0, 3)  # unusable names fall back to UTC


def test_item_categories_merge_attributes_case_insensitively() -> None:
    assert item_categories({"genres": ["Drama", "Comedy "], "category": "drama"}) == ("comedy", "drama")
    assert item_categories({"genres": "Action|Sci-Fi"}) == ("action", "sci-fi")
    assert item_categories({"title": "x"}) == ()


def test_next_expiry_is_when_the_oldest_windowed_event_leaves() -> None:
    store = FeatureStore()
    now = 1_800_000_000.0
    code = store.type_code("view")
    for age in (100.0, 3000.0):
        store.add("u:a", round((now - age) * 1e6), 1, code, -1, 0, float("nan"), float("nan"))
    store.add("u:a", round((now + 50) * 1e6), 2, code, -1, 0, float("nan"), float("nan"))  # future-dated
    assert store.next_expiry("u:a", [3600.0], now) == pytest.approx(now + 50)
    assert store.next_expiry("u:a", [3600.0], now + 60) == pytest.approx(now - 3000 + 3600)
    hour = FeatureRef("count", "view", window_seconds=3600)
    assert store.values("u:a", [hour], now)[hour] == 2
    assert store.values("u:a", [hour], now + 600)[hour] == 2  # the future one entered, the oldest left
    assert store.next_expiry("u:unknown", [3600.0], now) is None
