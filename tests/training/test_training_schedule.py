"""Scheduled retraining: runs on its timer, skips when nothing is new, survives failures."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from planted import START

from attune.runtime import Runtime
from attune.settings import load_settings
from attune.training.registry import ModelRegistry
from attune.training.schedule import RetrainScheduler, data_mark, retraining_for


def test_the_timer_runs_the_job_repeatedly_until_stopped() -> None:
    ran = threading.Event()
    calls: list[int] = []

    def job() -> int:
        calls.append(1)
        if len(calls) >= 3:
            ran.set()
        return len(calls)

    scheduler = RetrainScheduler(job, interval_seconds=0.01).start()
    assert ran.wait(10), "the job never ran three times"
    scheduler.stop(timeout=10)
    stopped_at = len(calls)
    assert scheduler.runs >= 3 and scheduler.last_result >= 3
    assert not scheduler._thread.is_alive() and len(calls) == stopped_at


def test_a_failing_job_is_recorded_and_does_not_stop_the_timer() -> None:
    attempts: list[int] = []
    recovered = threading.Event()

    def job() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("store unavailable")
        recovered.set()
        return "ok"

    scheduler = RetrainScheduler(job, interval_seconds=0.01).start()
    assert recovered.wait(10)
    scheduler.stop(timeout=10)
    assert scheduler.failures == 1 and scheduler.last_result == "ok" and scheduler.last_error is None


def test_ticks_without_new_data_are_skipped() -> None:
    scheduler = RetrainScheduler(lambda: "trained", interval_seconds=1, changed=lambda: False)
    assert scheduler.tick() is False
    assert scheduler.skipped == 1 and scheduler.last_result is None


def test_a_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RetrainScheduler(lambda: None, interval_seconds=0)


def test_retraining_is_off_by_default_and_rejects_nonsense() -> None:
    assert load_settings().training.retrain_every_hours is None
    assert retraining_for(SimpleNamespace(settings=load_settings())) is None
    with pytest.raises(ValueError, match="greater than 0"):
        load_settings(training={"retrain_every_hours": -1})


def test_the_configured_scheduler_trains_once_per_change_of_data(make_runtime, tmp_path) -> None:
    runtime: Runtime = make_runtime(training={"retrain_every_hours": 1.0, "retrain_model": "popular"})
    scheduler = retraining_for(runtime)
    assert scheduler is not None and scheduler.interval_seconds == 3600.0
    assert scheduler.tick() is False  # an empty store: nothing to learn from
    events = [
        {"type": "view", "user_id": user, "item_id": item, "timestamp": START + n}
        for n, (user, item) in enumerate(
            [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "y"), ("c", "z")]
        )
    ]
    runtime.ingest.ingest(events)
    runtime.catch_up()
    assert data_mark(runtime.engine).rows == 6
    assert scheduler.tick() is True and scheduler.last_error is None
    registry = ModelRegistry(runtime.engine, runtime.settings.data_dir / "models")
    assert registry.promoted().name == "popular"
    assert scheduler.tick() is False  # the same data again: skipped
    runtime.ingest.ingest([{"type": "view", "user_id": "d", "item_id": "x", "timestamp": START + 99}])
    runtime.catch_up()
    assert scheduler.tick() is True
    assert [v.version for v in registry.list()] == ["v2", "v1"]
    assert [p.actor for p in registry.history()] == ["scheduler", "scheduler"]
