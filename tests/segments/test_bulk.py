"""Bulk re-evaluation: the vectorized path leaves exactly what the real-time path leaves."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.segments.bulk import resolve_columns
from attune.segments.definitions import SegmentDefinition, resolve_exclusive

NOW = time.time()
DAY = 86400.0

DEFINITIONS = {
    "drama_fans": {"rule": 'count(view, window=14d, category="drama") >= 1'},
    "young": {"rule": "trait.age between 18 and 24"},
    "spenders": {"rule": "sum(purchase.value, window=30d) >= 100 or engagement_score >= 0.7", "group": "tier", "priority": 10},
    "browsers": {"rule": "exists(view, window=30d)", "group": "tier", "priority": 1},
    "mobile_no_buy": {"rule": 'context.device == "mobile" and not exists(purchase, window=30d)'},
    "young_eu_fans": {"rule": 'segment("drama_fans") and trait.country in ("DE", "FR")'},
    "dormant": {"rule": "recency_days > 10", "purpose": "marketing"},
    "lookers": {"rule": "distinct(view, window=7d) >= 2 and count(click, window=7d) < 2"},
}


def synthetic_events(n_users: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    events: list[dict] = []
    for u in range(n_users):
        user = f"u{u}"
        events.append(
            {
                "type": "identify",
                "user_id": user,
                "traits": {"age": int(rng.integers(14, 40)), "country": str(rng.choice(["DE", "FR", "US"]))},
                "timestamp": NOW - 40 * DAY,
            }
        )
        for _ in range(int(rng.integers(0, 12))):
            kind = str(rng.choice(["view", "view", "click", "purchase"]))
            # Whole minutes plus 30 s: no event sits within seconds of a window's edge.
            ago = float(rng.integers(1, 40 * 24 * 60)) * 60 + 30
            event = {
                "type": kind,
                "user_id": user,
                "item_id": f"i{int(rng.integers(0, 8))}",
                "timestamp": NOW - ago,
                "context": {"device": {"type": str(rng.choice(["mobile", "desktop"]))}},
            }
            if kind == "purchase":
                event["value"] = float(rng.integers(10, 120))
            events.append(event)
    return events


def snapshot(engine) -> dict[str, dict[str, float]]:
    return {
        name: {key: m.confidence for key, m in engine.members(name)} for name in sorted(engine.definitions())
    }


def test_evaluate_all_matches_the_real_time_path(make_runtime) -> None:
    runtime = make_runtime()
    runtime.catalog.upsert([(f"i{j}", {"genres": "Drama" if j % 2 else "Comedy"}) for j in range(8)])
    refused = {f"u:u{u}" for u in range(0, 60, 3)}
    runtime.segments.allows = lambda key, purpose: key not in refused
    assert not runtime.ingest.ingest(synthetic_events(60, seed=7)).rejected
    runtime.catch_up()
    runtime.segments.apply_definitions(DEFINITIONS)  # re-evaluates everyone online at one instant
    instant = runtime.segments.clock()
    runtime.segments.reevaluate(now=instant)
    online = snapshot(runtime.segments)
    assert sum(len(m) for m in online.values()) > 60  # the data exercises the rules
    assert {n for n, m in online.items() if m} >= {"drama_fans", "young", "spenders", "browsers", "dormant"}, {
        n: len(m) for n, m in online.items()
    }
    assert not set(online["dormant"]) & refused
    # Nothing to change when both paths agree...
    totals = runtime.segments.evaluate_all(as_of=instant)
    assert (totals["entered"], totals["exited"], totals["updated"]) == (0, 0, 0)
    # ...and from nothing, the bulk path rebuilds exactly the real-time state.
    runtime.segments.reset()
    totals = runtime.segments.evaluate_all(as_of=instant)
    assert totals["entered"] == sum(len(m) for m in online.values())
    assert snapshot(runtime.segments) == online
    # Per-person reads agree with the per-segment ones.
    for name, members in online.items():
        for key in members:
            assert name in {m.name for m in runtime.segments.segments_of(key)}


names = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=200, deadline=None)
@given(
    spec=st.dictionaries(names, st.tuples(st.sampled_from([None, "g", "h"]), st.integers(0, 2)), min_size=1),
    rows=st.lists(st.dictionaries(names, st.sampled_from([0.0, 0.4, 1.0])), min_size=1, max_size=8),
)
def test_resolve_columns_is_resolve_exclusive_per_row(spec, rows) -> None:
    defs = {n: SegmentDefinition(name=n, rule=None, priority=p, group=g, kind="learnt") for n, (g, p) in spec.items()}
    columns = {n: np.array([row.get(n, 0.0) for row in rows]) for n in defs}
    held = resolve_columns(columns, defs)
    for i, row in enumerate(rows):
        expected = resolve_exclusive({n: row.get(n, 0.0) for n in defs}, defs)
        got = {n: float(held[n][i]) for n in defs if held[n][i] > 0}
        assert got == expected
