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
    "spenders": {
        "rule": "sum(purchase.value, window=30d) >= 100 or engagement_score >= 0.7",
        "group": "tier",
        "priority": 10,
    },
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
    runtime.segments.allows_many = None  # the bulk path asks the per-person hook above too
    assert not runtime.ingest.ingest(synthetic_events(60, seed=7)).rejected
    runtime.catch_up()
    runtime.segments.apply_definitions(DEFINITIONS)  # re-evaluates everyone online at one instant
    instant = runtime.segments.clock()
    runtime.segments.reevaluate(now=instant)
    online = snapshot(runtime.segments)
    assert sum(len(m) for m in online.values()) > 60  # the data exercises the rules
    assert {n for n, m in online.items() if m} >= {
        "drama_fans",
        "young",
        "spenders",
        "browsers",
        "dormant",
    }, {n: len(m) for n, m in online.items()}
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
    defs = {
        n: SegmentDefinition(name=n, rule=None, priority=p, group=g, kind="learnt")
        for n, (g, p) in spec.items()
    }
    columns = {n: np.array([row.get(n, 0.0) for row in rows]) for n in defs}
    held = resolve_columns(columns, defs)
    for i, row in enumerate(rows):
        expected = resolve_exclusive({n: row.get(n, 0.0) for n in defs}, defs)
        got = {n: float(held[n][i]) for n in defs if held[n][i] > 0}
        assert got == expected


def test_bulk_snapshots_reload_and_keep_later_changes(make_runtime) -> None:
    from sqlalchemy import func, select

    from attune.segments.store import decode_snapshot
    from attune.storage.tables import segment_memberships, segment_snapshots

    runtime = make_runtime(segments={"bulk_threshold": 0})  # every bulk change becomes a snapshot
    runtime.catalog.upsert([(f"i{j}", {"genres": "Drama" if j % 2 else "Comedy"}) for j in range(8)])
    assert not runtime.ingest.ingest(synthetic_events(50, seed=11)).rejected
    runtime.catch_up()
    runtime.segments.apply_definitions(DEFINITIONS)
    instant = runtime.segments.clock()
    runtime.segments.reevaluate(now=instant)
    online = snapshot(runtime.segments)
    runtime.segments.reset()
    totals = runtime.segments.evaluate_all(as_of=instant)
    assert totals["entered"] == sum(len(m) for m in online.values()) > 0
    assert snapshot(runtime.segments) == online
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segment_memberships)).scalar() == 0
        stored = {
            name: decode_snapshot(bytes(data))
            for name, data in conn.execute(select(segment_snapshots.c.segment, segment_snapshots.c.data))
        }
    assert {n: set(keys) for n, (keys, _, _) in stored.items()} == {n: set(m) for n, m in online.items() if m}
    # Bulk changes are counted per hour, not recorded per person.
    assert runtime.segments.store.history_count() == 0
    for name, members in online.items():
        if members:
            assert sum(r["entries"] for r in runtime.segments.store.sizes(name)) == len(members)
    # Another process loads the same memberships from the snapshots.
    assert snapshot(make_runtime().segments) == online
    # Later changes by events override the snapshot: two clicks end a looker's membership.
    looker = min(online["lookers"])
    user = looker.removeprefix("u:")
    clicks = [{"type": "click", "user_id": user, "item_id": "i1", "timestamp": NOW - 60 * k} for k in (1, 2)]
    assert not runtime.ingest.ingest(clicks).rejected
    runtime.catch_up()
    assert "lookers" not in {m.name for m in runtime.segments.segments_of(looker)}
    expected = snapshot(runtime.segments)
    assert looker not in expected["lookers"]
    assert snapshot(make_runtime().segments) == expected
    # Erasure takes the person out of every snapshot too.
    erased = min(online["browsers"])
    runtime.segments.erase(erased)
    with runtime.engine.connect() as conn:
        for data in conn.execute(select(segment_snapshots.c.data)).scalars():
            assert erased not in decode_snapshot(bytes(data))[0]
    reloaded = snapshot(make_runtime().segments)
    assert all(erased not in members for members in reloaded.values())
    assert reloaded == snapshot(runtime.segments)
