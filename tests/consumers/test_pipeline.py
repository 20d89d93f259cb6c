"""The consumer runner and pipeline: positions commit with state, failures retry, waits work."""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from attune.consumers.base import ConsumerRunner
from attune.consumers.pipeline import Pipeline
from attune.events.model import LoggedEvent
from attune.log.sql import SqlOffsetStore
from attune.runtime import Runtime


class Recorder:
    """A realtime consumer that records offsets and can be told to fail."""

    realtime = True

    def __init__(self, name: str, failures: int = 0, buffer: bool = False) -> None:
        self.name = name
        self.failures = failures
        self.buffer = buffer
        self.seen: list[int] = []
        self.pending: list[int] = []
        self.lock = threading.Lock()

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("planned failure")
            offsets = [e.offset for e in batch]
            if self.buffer:
                self.pending.extend(offsets)
                return None
            self.seen.extend(offsets)
            return offsets[-1]

    def flush(self, conn: Connection) -> int | None:
        with self.lock:
            if not self.pending:
                return None
            self.seen.extend(self.pending)
            self.pending.clear()
            return self.seen[-1]

    def reset(self, conn: Connection) -> None:
        self.seen.clear()


def append(runtime: Runtime, n: int, prefix: str = "e") -> int:
    report = runtime.ingest.ingest(
        [{"event_id": f"{prefix}{i}", "type": "view", "anonymous_id": "d"} for i in range(n)]
    )
    return report.last_offset


def test_runner_commits_position_with_state(runtime: Runtime) -> None:
    append(runtime, 3)
    recorder = Recorder("rec")
    runner = ConsumerRunner(recorder, runtime.log, runtime.engine, batch_size=2)
    assert runner.drain() == 3
    assert recorder.seen == [1, 2, 3]
    assert SqlOffsetStore(runtime.engine).get("rec") == 3
    # A new runner resumes after the committed position.
    append(runtime, 2, prefix="f")
    again = Recorder("rec")
    assert ConsumerRunner(again, runtime.log, runtime.engine).drain() == 2
    assert again.seen == [4, 5]


def test_failed_batch_does_not_move_the_position(runtime: Runtime) -> None:
    append(runtime, 2)
    recorder = Recorder("rec", failures=1)
    runner = ConsumerRunner(recorder, runtime.log, runtime.engine)
    try:
        runner.step()
    except RuntimeError:
        pass
    assert SqlOffsetStore(runtime.engine).get("rec") == 0 and runner.cursor == 0
    assert runner.drain() == 2 and recorder.seen == [1, 2]


def test_buffering_consumer_commits_on_flush(runtime: Runtime) -> None:
    append(runtime, 2)
    recorder = Recorder("buf", buffer=True)
    runner = ConsumerRunner(recorder, runtime.log, runtime.engine)
    runner.step()
    assert runner.cursor == 2 and runner.position == 0  # handed over, not yet durable
    runner.flush()
    assert runner.position == 2 and SqlOffsetStore(runtime.engine).get("buf") == 2


def test_background_pipeline_retries_and_serves_waits(runtime: Runtime) -> None:
    flaky = Recorder("flaky", failures=2)
    pipeline = Pipeline([flaky], runtime.log, runtime.engine, poll_seconds=0.05)
    pipeline.start()
    try:
        last = append(runtime, 4)
        pipeline.notify()
        assert pipeline.wait_for(last, timeout=20), "the consumer never caught up after its failures"
        assert flaky.seen == [1, 2, 3, 4]
    finally:
        pipeline.stop()


def test_wait_for_times_out_when_nothing_runs(runtime: Runtime) -> None:
    pipeline = Pipeline([Recorder("idle")], runtime.log, runtime.engine)
    assert pipeline.wait_for(append(runtime, 1), timeout=0.05) is False


def test_replay_resets_and_reprocesses(runtime: Runtime) -> None:
    append(runtime, 3)
    recorder = Recorder("rec")
    pipeline = Pipeline([recorder], runtime.log, runtime.engine)
    assert pipeline.drain() == 3
    assert pipeline.replay() == 3
    assert recorder.seen == [1, 2, 3]
    assert pipeline.runner("rec").position == 3
