"""Learnt segments end to end: planted behaviour groups in the log come back as segments,
stored with confidences, served by ``GET /v1/users/{id}/segments``, refreshed on a schedule."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import adjusted_rand_score

from attune.segments.learning import learn_and_store, learning_for

NOW = time.time()
DAY = 86400.0
GROUPS = ("buyer", "browser", "lapsed")


def planted_events(per_group: int, seed: int = 0) -> tuple[list[dict], dict[str, int]]:
    """Buyers purchase a lot, browsers view a lot recently, the lapsed were last seen ~2 months ago."""
    rng = np.random.default_rng(seed)
    events: list[dict] = []
    truth: dict[str, int] = {}
    for g, group in enumerate(GROUPS):
        for i in range(per_group):
            user = f"{group}{i}"
            truth[f"u:{user}"] = g
            if group == "buyer":
                for j in range(int(rng.integers(4, 7))):
                    ago = float(rng.uniform(0.5, 6)) * DAY
                    events.append(
                        {"type": "view", "user_id": user, "item_id": f"i{j}", "timestamp": NOW - ago - 60}
                    )
                    events.append(
                        {"type": "purchase", "user_id": user, "item_id": f"i{j}", "timestamp": NOW - ago,
                         "value": float(rng.uniform(150, 250))}
                    )  # fmt: skip
            elif group == "browser":
                for j in range(int(rng.integers(25, 35))):
                    ago = float(rng.uniform(0.1, 3)) * DAY
                    events.append(
                        {"type": "view", "user_id": user, "item_id": f"i{j % 9}", "timestamp": NOW - ago}
                    )
            else:
                for j in range(2):
                    ago = float(rng.uniform(55, 65)) * DAY
                    events.append(
                        {"type": "view", "user_id": user, "item_id": f"i{j}", "timestamp": NOW - ago}
                    )
    return events, truth


def ingest(runtime, events: list[dict]) -> None:
    report = runtime.ingest.ingest(events)
    assert not report.rejected, report.rejected[:3]
    runtime.catch_up()


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_planted_groups_come_back_as_segments(make_runtime, method: str) -> None:
    runtime = make_runtime()
    events, truth = planted_events(25)
    ingest(runtime, events)
    outcome = learn_and_store(runtime, method=method, prefix="cluster", as_of=NOW)
    assert outcome.clustering.k == len(GROUPS)  # chosen by silhouette, not given
    engine = runtime.segments
    assert sorted(engine.definitions()) == ["cluster_1", "cluster_2", "cluster_3"]
    keys = sorted(truth)
    labels = []
    for key in keys:
        held = sorted(engine.segments_of(key), key=lambda m: -m.confidence)
        assert held, key
        assert all(0 < m.confidence <= 1 for m in held)
        labels.append(held[0].name)
    assert adjusted_rand_score([truth[k] for k in keys], labels) > 0.95
    # Each segment is described by what sets its group apart.
    for name, spec in outcome.specs.items():
        members = [k for k in keys if name in {m.name for m in engine.segments_of(k)}]
        group = GROUPS[int(np.bincount([truth[k] for k in members]).argmax())]
        top = spec["distinctions"][0]
        expected = {"buyer": {"monetary"}, "browser": {"frequency", "active_days", "engagement_score"},
                    "lapsed": {"recency_days"}}[group]  # fmt: skip
        high = top["effect"] > 0
        assert (top["feature"] in expected and high) or (
            group != "lapsed" and top["feature"] == "recency_days"
        ), spec
    # The column-wise path left what the per-person path leaves: re-evaluating changes nothing.
    before = {key: engine.segments_of(key) for key in keys}
    engine.reevaluate()
    assert {key: engine.segments_of(key) for key in keys} == before
    # Stored: another process loads the same memberships and confidences.
    again = make_runtime()
    for key in keys:
        assert again.segments.segments_of(key) == runtime.segments.segments_of(key)
    assert again.segments.stored("cluster_1").spec["kind"] == "learnt"


def test_memberships_with_confidence_are_served_and_relearning_replaces(make_runtime) -> None:
    from attune.api.app import create_app

    runtime = make_runtime(segments={"refresh_seconds": 3600})  # one process: nothing to follow
    events, _ = planted_events(20, seed=1)
    ingest(runtime, events)  # consumers run here, not in the app (which then follows the store)
    _, secret = runtime.keys.create(frozenset({"admin"}), name="test-admin")
    with TestClient(
        create_app(runtime, run_consumers=False), headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        served_after_learning(runtime, client)


def served_after_learning(runtime, client: TestClient) -> None:
    outcome = learn_and_store(runtime, method="gmm", prefix="cluster", as_of=NOW)
    assert outcome.clustering.k == 3
    body = client.get("/v1/users/buyer3/segments").json()
    served = {s["name"]: s["confidence"] for s in body["segments"]}
    expected = {n: c for n, members in outcome.assignments.items() if (c := members.get("u:buyer3"))}
    assert served == pytest.approx(expected) and served
    listed = {s["name"]: s for s in client.get("/v1/segments").json()["segments"]}
    assert listed["cluster_1"]["kind"] == "learnt" and listed["cluster_1"]["description"]
    # Learning again with k fixed to 2 replaces the three clusters: their members leave.
    learn_and_store(runtime, method="kmeans", k=2, prefix="cluster", as_of=NOW)
    assert sorted(runtime.segments.definitions()) == ["cluster_1", "cluster_2"]
    held = {s["name"] for s in client.get("/v1/users/buyer3/segments").json()["segments"]}
    assert len(held) == 1 and held <= {"cluster_1", "cluster_2"}


def test_schedule_is_off_by_default_and_relearns_only_on_new_data(make_runtime) -> None:
    assert learning_for(make_runtime()) is None
    runtime = make_runtime(segments={"learn_every_hours": 24, "learn_method": "kmeans"})
    scheduler = learning_for(runtime)
    assert scheduler is not None and scheduler.interval_seconds == 24 * 3600
    events, _ = planted_events(15, seed=2)
    ingest(runtime, events)
    assert scheduler.tick() and scheduler.last_error is None, scheduler.last_error
    assert {n for n, d in runtime.segments.definitions().items() if d.kind == "learnt"}
    assert not scheduler.tick()  # nothing new in the lake: skipped
    ingest(runtime, [{"type": "view", "user_id": "newcomer", "item_id": "i1", "timestamp": NOW}])
    learnt_at = runtime.segments.stored("cluster_1").updated_at
    assert scheduler.tick() and scheduler.last_error is None and scheduler.skipped == 1
    assert runtime.segments.segments_of("u:newcomer")  # the newcomer was clustered too
    assert runtime.segments.stored("cluster_1").updated_at >= learnt_at
