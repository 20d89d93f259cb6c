"""The consumer runner and pipeline: positions commit with state, failures retry, waits work."""

from __future__ import annotations

import threading
import time

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import Connection, text

from attune.consumers.base import ConsumerRunner, apply_together
from attune.consumers.pipeline import Pacing, Pipeline
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


def test_each_handled_batch_moves_the_consumer_metrics(runtime: Runtime) -> None:
    labels = {"consumer": "metered"}

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    events_before = sample("attune_consumer_events_total")
    batches_before = sample("attune_consumer_batch_seconds_count")
    append(runtime, 5)
    runner = ConsumerRunner(Recorder("metered"), runtime.log, runtime.engine, batch_size=2)
    assert runner.drain() == 5
    assert sample("attune_consumer_events_total") - events_before == 5
    assert sample("attune_consumer_batch_seconds_count") - batches_before == 3  # 2 + 2 + 1
    assert sample("attune_consumer_position") == runner.cursor == 5


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


# -- pacing, non-transactional consumers, consumer durability -----------------------------

seconds = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(busy=st.booleans(), full=st.booleans(), took=seconds, since=seconds)
def test_realtime_lane_spaces_its_steps_and_rests_only_under_load(
    busy: bool, full: bool, took: float, since: float
) -> None:
    pacing = Pacing()
    rest = pacing.rest(realtime=True, busy=busy, full=full, took=took, since_start=since)
    if busy and full:
        assert rest == min(pacing.realtime_rest_ratio * took, pacing.max_rest)
    elif busy:
        # Appends arriving, lane at the head: steps start realtime_interval apart.
        assert rest == max(0.0, pacing.realtime_interval - since)
    else:
        assert rest == 0.0  # a quiet spell: the next event is handled at once


@given(busy=st.booleans(), full=st.booleans(), took=seconds, since=seconds)
def test_bulk_lane_collects_at_the_head_and_gives_way_under_load(
    busy: bool, full: bool, took: float, since: float
) -> None:
    pacing = Pacing()
    rest = pacing.rest(realtime=False, busy=busy, full=full, took=took, since_start=since)
    assert rest >= 0.0
    if not full:
        # At the head: wait until bulk_interval has passed since the last step began.
        assert rest >= pacing.bulk_interval - since
    if busy and full:
        assert rest == min(pacing.bulk_rest_ratio * took, pacing.max_rest)
    if full and not busy:
        assert rest == 0.0  # catching up with nobody waiting: flat out


class BulkRecorder(Recorder):
    """A non-realtime consumer that remembers each batch it was handed."""

    realtime = False

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.batches: list[list[int]] = []

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        self.batches.append([e.offset for e in batch])
        return super().handle(batch, conn)


def test_paced_pipeline_serves_realtime_at_once_and_batches_the_bulk_lane(runtime: Runtime) -> None:
    realtime, bulk = Recorder("rt"), BulkRecorder("bulk")
    # A bulk interval far longer than the test: after its first step, the bulk lane waits.
    pacing = Pacing(bulk_interval=600.0)
    pipeline = Pipeline([realtime, bulk], runtime.log, runtime.engine, poll_seconds=0.05, pacing=pacing)
    pipeline.start()
    try:
        first = append(runtime, 1, prefix="a")
        pipeline.notify()
        assert pipeline.wait_for(first, timeout=20)
        deadline = time.monotonic() + 20
        while not bulk.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bulk.batches == [[first]]
        last = first
        for n in range(3):
            last = append(runtime, 2, prefix=f"b{n}-")
            pipeline.notify()
            assert pipeline.wait_for(last, timeout=20)
        assert realtime.seen == list(range(1, last + 1))
        assert bulk.batches == [[first]], "the bulk lane should be collecting, not stepping per append"
    finally:
        pipeline.stop()
    # Stopping flushes: the bulk consumer is durable up to its last handed-over batch.
    assert pipeline.runner("bulk").position == first


@given(busy=st.booleans(), per_event=st.floats(min_value=0, max_value=1, allow_nan=False))
def test_a_realtime_step_is_cut_to_what_fits_in_its_time_shorter_while_appends_arrive(busy: bool, per_event: float) -> None:
    pacing = Pacing(realtime_batch=1000, busy_step=0.004, quiet_step=0.05, busy_min_batch=10, bulk_batch=5000)
    size = pacing.batch(realtime=True, busy=busy, seconds_per_event=per_event)
    assert pacing.busy_min_batch <= size <= pacing.realtime_batch
    step = pacing.busy_step if busy else pacing.quiet_step
    if per_event == 0:
        assert size == pacing.realtime_batch  # no cost known yet: a full batch
    else:
        if size > pacing.busy_min_batch:  # the most that fits in the step's time
            assert size * per_event <= step
        if size < pacing.realtime_batch:
            assert (size + 1) * per_event > step or size == pacing.busy_min_batch
        if per_event * 500 >= step:
            assert size <= 500
    assert pacing.batch(realtime=False, busy=busy, seconds_per_event=per_event) == pacing.bulk_batch


class SlowRecorder(Recorder):
    """A realtime consumer that takes 1 ms per event and remembers its batch sizes."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.sizes: list[int] = []

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        self.sizes.append(len(batch))
        time.sleep(0.001 * len(batch))
        return super().handle(batch, conn)


def test_a_lane_catching_up_while_appends_arrive_holds_each_transaction_briefly(runtime: Runtime) -> None:
    slow = SlowRecorder("slow")
    pacing = Pacing(realtime_batch=100, busy_step=0.01, busy_min_batch=2, realtime_rest_ratio=0.0)
    pipeline = Pipeline([slow], runtime.log, runtime.engine, poll_seconds=0.05, pacing=pacing)
    last = append(runtime, 300, prefix="backlog-")
    pipeline.start()
    try:
        while pipeline.runner("slow").cursor < last:  # appends keep arriving meanwhile
            pipeline.notify()
            time.sleep(0.005)
    finally:
        pipeline.stop()
    assert slow.seen == list(range(1, last + 1))
    assert slow.sizes[0] == 100  # the first step knows no cost yet and reads a full batch
    if runtime.engine.dialect.name == "sqlite":
        # Then steps of ~10 ms (10 events): each holds the whole store's write lock.
        assert 2 <= max(slow.sizes[1:]) <= 12, slow.sizes
    else:
        assert set(slow.sizes) == {100}  # row locks: appends never wait for a consumer


def test_lanes_without_pacing_use_the_pipeline_batch(runtime: Runtime) -> None:
    pipeline = Pipeline([Recorder("rt"), BulkRecorder("bulk")], runtime.log, runtime.engine, batch_size=7)
    assert [pipeline.lane_batch(lane) for lane in pipeline.lanes] == [7, 7]
    pipeline.pacing = Pacing(realtime_batch=3, bulk_batch=11)
    assert [(lane.realtime, pipeline.lane_batch(lane)) for lane in pipeline.lanes] == [(True, 3), (False, 11)]


class FileLike(Recorder):
    """A consumer whose state lives outside the database: it must get no connection."""

    transactional = False

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        assert conn is None
        return super().handle(batch, conn)

    def flush(self, conn: Connection) -> int | None:
        assert conn is None
        return super().flush(conn)


def test_non_transactional_consumer_commits_only_its_position(runtime: Runtime) -> None:
    append(runtime, 3)
    consumer = FileLike("files", buffer=True)
    runner = ConsumerRunner(consumer, runtime.log, runtime.engine)
    assert runner.drain() == 3
    assert consumer.seen == [1, 2, 3]
    assert SqlOffsetStore(runtime.engine).get("files") == 3


class Durability(Recorder):
    """Records the connection's ``synchronous`` level inside each consumer transaction."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.levels: list[int] = []

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        self.levels.append(conn.execute(text(_DURABILITY[conn.dialect.name])).scalar())
        return super().handle(batch, conn)


_DURABILITY = {"sqlite": "PRAGMA synchronous", "postgresql": "SHOW synchronous_commit"}


def test_consumer_transactions_skip_the_fsync_and_appends_keep_it(runtime: Runtime) -> None:
    append(runtime, 2)
    consumer = Durability("dur")
    ConsumerRunner(consumer, runtime.log, runtime.engine, batch_size=1).drain()
    if runtime.engine.dialect.name != "sqlite":
        # The WAL writer flushes consumer commits; appends on the same connections still wait.
        assert consumer.levels == ["off", "off"]
        connections = [runtime.engine.connect() for _ in range(4)]
        try:
            assert {c.execute(text(_DURABILITY["postgresql"])).scalar() for c in connections} == {"on"}
        finally:
            for connection in connections:
                connection.close()
        return
    assert consumer.levels == [1, 1]  # NORMAL: the WAL is synced by the next append's commit
    # Every pooled connection is back at the configured level (FULL) for appends.
    connections = [runtime.engine.connect() for _ in range(8)]
    try:
        assert {c.execute(text("PRAGMA synchronous")).scalar() for c in connections} == {2}
    finally:
        for connection in connections:
            connection.close()


class Writer(Recorder):
    """Writes one row per event into a scratch table through the transaction it is given."""

    def __init__(self, name: str, failures: int = 0) -> None:
        super().__init__(name, failures)
        self.connections: list[int] = []

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        self.connections.append(id(conn))
        conn.execute(
            text("INSERT INTO scratch (consumer, event_offset) VALUES (:c, :o)"),
            [{"c": self.name, "o": e.offset} for e in batch],
        )
        return super().handle(batch, conn)


def _scratch(runtime: Runtime) -> None:
    with runtime.engine.begin() as conn:
        # The PostgreSQL fixture empties the known tables between tests, not this one.
        conn.execute(text("DROP TABLE IF EXISTS scratch"))
        conn.execute(text("CREATE TABLE scratch (consumer TEXT, event_offset INTEGER)"))


def _rows(runtime: Runtime, name: str) -> list[int]:
    with runtime.engine.connect() as conn:
        return [r[0] for r in conn.execute(
            text("SELECT event_offset FROM scratch WHERE consumer = :c ORDER BY event_offset"), {"c": name}
        )]


def test_lane_consumers_share_one_transaction(runtime: Runtime) -> None:
    _scratch(runtime)
    append(runtime, 3)
    first, second = Writer("first"), Writer("second")
    runners = [ConsumerRunner(c, runtime.log, runtime.engine) for c in (first, second)]
    outcomes = apply_together(runners, runtime.log.read(0, 10))
    assert outcomes == {id(runners[0]): 3, id(runners[1]): 3}
    assert first.connections == second.connections and len(first.connections) == 1
    offsets = SqlOffsetStore(runtime.engine)
    assert offsets.get("first") == offsets.get("second") == 3
    assert [r.cursor for r in runners] == [3, 3]
    assert _rows(runtime, "first") == _rows(runtime, "second") == [1, 2, 3]


def test_a_failing_consumer_in_a_shared_transaction_is_isolated(runtime: Runtime) -> None:
    _scratch(runtime)
    append(runtime, 2)
    good, bad = Writer("good"), Writer("bad", failures=2)
    runners = [ConsumerRunner(c, runtime.log, runtime.engine) for c in (good, bad)]
    outcomes = apply_together(runners, runtime.log.read(0, 10))
    # The shared attempt rolled back; the good consumer then committed alone, once.
    assert outcomes[id(runners[0])] == 2
    assert isinstance(outcomes[id(runners[1])], RuntimeError)
    assert _rows(runtime, "good") == [1, 2] and _rows(runtime, "bad") == []
    offsets = SqlOffsetStore(runtime.engine)
    assert offsets.get("good") == 2 and offsets.get("bad") == 0
    assert runners[1].cursor == 0
    # Retried later, the bad one catches up without touching the good one's work.
    assert apply_together(runners, runtime.log.read(0, 10)) == {id(runners[0]): 0, id(runners[1]): 2}
    assert _rows(runtime, "good") == [1, 2] and _rows(runtime, "bad") == [1, 2]


class OwnWriter(Recorder):
    """Writes through a transaction of its own, as the segment engine does."""

    shares_transaction = False

    def __init__(self, name: str, engine) -> None:  # noqa: ANN001 - Engine
        super().__init__(name)
        self.engine = engine
        self.calls = 0

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        self.calls += 1
        with self.engine.begin() as own:
            own.execute(
                text("INSERT INTO scratch (consumer, event_offset) VALUES (:c, :o)"),
                [{"c": self.name, "o": e.offset} for e in batch],
            )
        return super().handle(batch, conn)


def test_a_consumer_with_its_own_transactions_is_not_shared(runtime: Runtime) -> None:
    _scratch(runtime)
    append(runtime, 2)
    first, second, own = Writer("first"), Writer("second"), OwnWriter("own", runtime.engine)
    runners = [ConsumerRunner(c, runtime.log, runtime.engine) for c in (first, second, own)]
    outcomes = apply_together(runners, runtime.log.read(0, 10))
    assert outcomes == {id(r): 2 for r in runners}
    # Handed the batch once: never inside the shared transaction, whose lock it would wait for.
    assert own.calls == 1
    assert first.connections == second.connections
    assert _rows(runtime, "own") == [1, 2] and _rows(runtime, "first") == [1, 2]


def test_lanes_wait_briefly_for_requests_in_flight(runtime: Runtime) -> None:
    recorder = Recorder("rec")
    pipeline = Pipeline(
        [recorder], runtime.log, runtime.engine, poll_seconds=0.05, pacing=Pacing(defer_to_requests=0.5)
    )
    pipeline.in_flight.enter()  # a request is being answered
    pipeline.start()
    try:
        last = append(runtime, 1)
        pipeline.notify()
        time.sleep(0.2)
        assert recorder.seen == []  # the lane waits for the request to finish…
        pipeline.in_flight.leave()
        assert pipeline.wait_for(last, timeout=5) and recorder.seen == [1]  # …then steps at once
        pipeline.in_flight.enter()  # a request that never finishes delays a step only so long
        last = append(runtime, 1, prefix="g")
        pipeline.notify()
        assert pipeline.wait_for(last, timeout=10) and recorder.seen == [1, 2]
    finally:
        pipeline.in_flight.leave()
        pipeline.stop()


def test_a_consumer_with_its_own_flush_interval_is_flushed_on_it(runtime: Runtime) -> None:
    often, rarely = Recorder("often", buffer=True), Recorder("rarely", buffer=True)
    often.flush_seconds = 0.05  # type: ignore[attr-defined]
    # The pipeline's own interval is far longer than the test: only "often" is flushed.
    pipeline = Pipeline([often, rarely], runtime.log, runtime.engine, poll_seconds=0.02, flush_seconds=600.0)
    assert pipeline.flush_interval(pipeline.runner("often")) == 0.05
    assert pipeline.flush_interval(pipeline.runner("rarely")) == 600.0
    pipeline.start()
    try:
        last = append(runtime, 3)
        pipeline.notify()
        deadline = time.monotonic() + 20
        while often.seen != [1, 2, 3] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert often.seen == [1, 2, 3] and pipeline.runner("often").position == last
        assert rarely.seen == [] and rarely.pending == [1, 2, 3]
    finally:
        pipeline.stop()  # flushes everyone on the way out
    assert rarely.seen == [1, 2, 3]


def test_a_breather_rests_after_each_stretch_of_work_only_while_busy() -> None:
    from attune.consumers.pipeline import Breather

    now = [0.0]
    slept: list[float] = []
    busy = [True]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    breathe = Breather(lambda: busy[0], work=0.005, rest=0.003, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):  # 1 ms of work between calls: a rest after every 5 ms of it
        now[0] += 0.001
        breathe()
    assert slept == [0.003, 0.003]
    busy[0] = False
    for _ in range(10):
        now[0] += 0.001
        breathe()
    assert slept == [0.003, 0.003]  # nobody waits: no rest


def test_a_paced_pipeline_gives_each_runner_a_breather_and_an_unpaced_one_none(runtime: Runtime) -> None:
    from attune.consumers.pipeline import Breather

    pipeline = Pipeline([Recorder("rt")], runtime.log, runtime.engine)
    assert pipeline.runner("rt").pause is None
    pipeline.pacing = Pacing()
    assert isinstance(pipeline.runner("rt").pause, Breather)
    assert not pipeline.busy()
    pipeline.notify()
    assert pipeline.busy()


def test_steps_taken_while_no_appends_arrive_start_writing_the_wal_out(runtime: Runtime, monkeypatch) -> None:
    from attune.consumers import pipeline as pipeline_module

    started: list[str] = []
    monkeypatch.setattr(pipeline_module, "start_writeout", started.append)
    recorder = Recorder("rt")
    pipeline = Pipeline([recorder], runtime.log, runtime.engine, poll_seconds=0.05, pacing=Pacing())
    last = append(runtime, 3)
    pipeline.start()  # no append is reported: the lane is not busy
    try:
        assert pipeline.wait_for(last, timeout=20)
    finally:
        pipeline.stop()
    if runtime.engine.dialect.name == "sqlite":
        assert started and {str(path) for path in started} == {f"{runtime.engine.url.database}-wal"}
    else:
        assert started == []  # PostgreSQL flushes its own WAL


def test_steps_taken_while_appends_arrive_leave_the_wal_to_the_appends(runtime: Runtime, monkeypatch) -> None:
    from attune.consumers import pipeline as pipeline_module

    started: list[str] = []
    monkeypatch.setattr(pipeline_module, "start_writeout", started.append)
    recorder = Recorder("rt")
    pipeline = Pipeline([recorder], runtime.log, runtime.engine, poll_seconds=0.05, pacing=Pacing())
    pipeline.start()
    try:
        for n in range(5):
            pipeline.notify()  # appends keep arriving
            last = append(runtime, 2, prefix=f"b{n}-")
            pipeline.notify()
            assert pipeline.wait_for(last, timeout=20)
    finally:
        pipeline.stop()
    assert recorder.seen and started == []
