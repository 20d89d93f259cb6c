"""Ingest workers: batches ingested in processes of their own answer exactly as in-process ingestion
does, share the serving process's sessions, metrics and privacy decisions, and never lose an
acknowledged event when a worker dies."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from attune.errors import BadRequest, PayloadTooLarge, Unavailable, ValidationFailed
from attune.ingest.workers import IngestWorkers, default_worker_count
from attune.privacy.enforcement import STRIPPED_ID
from attune.runtime import Runtime
from attune.storage.tables import events, subjects

NOW = time.time()


def body(*events_: dict) -> bytes:
    return orjson.dumps({"events": list(events_)})


def view(n: int, person: str = "ana", **fields) -> dict:
    return {"event_id": f"e{n}", "type": "view", "user_id": person, "item_id": f"i{n}",
            "timestamp": NOW - 100 + n, **fields}


@pytest.fixture
def workers_of(make_runtime: Callable[..., Runtime]) -> Iterator[Callable[..., tuple[Runtime, IngestWorkers]]]:
    """``workers_of(count, **settings)``: a runtime with ``count`` ready ingest workers."""

    def factory(count: int = 2, **overrides) -> tuple[Runtime, IngestWorkers]:
        runtime = make_runtime(**overrides)
        workers = runtime.start_ingest_workers(count)
        assert workers is not None and workers.wait_ready(every=True), "the ingest workers did not start"
        return runtime, workers

    yield factory


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def accepted_total() -> float:
    return REGISTRY.get_sample_value("attune_events_accepted_total", {"source": "api"}) or 0.0


def test_a_worker_keeps_good_events_beside_bad_ones_and_counts_them_here(workers_of) -> None:
    runtime, workers = workers_of(1)
    before = accepted_total()
    rejected_before = REGISTRY.get_sample_value("attune_events_rejected_total", {"reason": "value"}) or 0.0
    report = workers.ingest_body(body(view(0), {"type": "view"}, view(2), "junk", view(4, value="x")))
    assert report is not None
    assert report.accepted == 2
    assert [r.index for r in report.rejected] == [1, 3, 4]
    assert report.rejected[2].errors == ["value: must be a number (got str)"]
    assert [e.event.event_id for e in runtime.log.read(0, 10)] == ["e0", "e2"]
    # The worker's metric updates are counted in this process's registry (what /metrics reads).
    assert accepted_total() - before == 2
    assert REGISTRY.get_sample_value("attune_events_rejected_total", {"reason": "value"}) - rejected_before == 1
    # Re-posting adds nothing, reported by request position, whichever worker handles it.
    again = workers.ingest_body(body(view(0), view(2)))
    assert (again.accepted, again.duplicates, again.duplicate_indices) == (0, 2, [0, 1])


def test_parsed_events_from_segments_endpoints_are_ingested_in_a_worker_with_their_source(workers_of) -> None:
    runtime, workers = workers_of(1)
    before = REGISTRY.get_sample_value("attune_events_accepted_total", {"source": "segment"}) or 0.0
    report = workers.ingest_events([view(0), {"type": "view"}], source="segment", now=NOW)
    assert (report.accepted, [r.index for r in report.rejected]) == (1, [1])
    assert runtime.log.read(0, 1)[0].event.context["source"] == "segment"
    assert REGISTRY.get_sample_value("attune_events_accepted_total", {"source": "segment"}) - before == 1


def test_body_errors_from_a_worker_are_the_errors_of_in_process_ingestion(workers_of) -> None:
    runtime, workers = workers_of(1)
    cases = [
        (b"{not json", BadRequest),
        (b'{"events": 5}', ValidationFailed),
        (orjson.dumps({"events": [view(0)], "extra": 1}), ValidationFailed),
        (body(*[view(n) for n in range(1001)]), PayloadTooLarge),
    ]
    for raw, error in cases:
        with pytest.raises(error) as in_worker:
            workers.ingest_body(raw)
        from attune.ingest.body import ingest_events_body

        with pytest.raises(error) as in_process:
            ingest_events_body(runtime.ingest, raw)
        assert (in_worker.value.message, in_worker.value.errors) == (in_process.value.message, in_process.value.errors)
    assert runtime.log.count() == 0


def test_a_persons_session_is_one_across_workers_and_the_serving_process(workers_of) -> None:
    runtime, workers = workers_of(2)
    # Idle workers are taken first-in first-out: consecutive batches go to different workers.
    workers.ingest_body(body(view(0)))
    workers.ingest_body(body(view(1)))
    runtime.ingest.ingest([view(2)])
    workers.ingest_body(body(view(3, person="bo")))
    sessions = {e.event.event_id: e.event.session_id for e in runtime.log.read(0, 10)}
    assert sessions["e0"] == sessions["e1"] == sessions["e2"]
    assert sessions["e3"] not in (None, sessions["e0"])
    # A gap longer than the timeout starts a new session, as in-process.
    workers.ingest_body(body(view(4, timestamp=NOW + 3 * 3600)))
    assert runtime.log.read(4, 1)[0].event.session_id != sessions["e0"]


def test_consent_withdrawn_here_applies_to_the_next_batch_in_a_worker(workers_of) -> None:
    runtime, workers = workers_of(1)
    keys = runtime.subject_keys
    # The worker caches the undecided state of kim first.
    assert workers.ingest_body(body(view(0, person="kim"))).accepted == 1
    runtime.privacy.consent.set("kim", {"analytics": "withdrawn"}, "test")
    assert workers.ingest_body(body(view(1, person="kim"))).accepted == 1
    with runtime.engine.connect() as conn:
        keys_by_id = dict(conn.execute(select(events.c.event_id, events.c.anon_key).order_by(events.c.offset)).all())
    assert keys_by_id["e0"] is None  # kim was stored under her user key before
    assert keys_by_id["e1"] == keys.anon(STRIPPED_ID)  # and is nobody after the withdrawal


def test_a_consent_event_in_a_worker_reaches_this_process_at_once(workers_of) -> None:
    runtime, workers = workers_of(1)
    consent = runtime.privacy.consent
    subject = runtime.subject_keys.user("kim")
    assert consent.states_of([subject])[subject] == {}  # cached here: nothing decided
    generation = consent.generation
    decision = {"type": "consent", "user_id": "kim", "properties": {"purposes": {"personalization": "withdrawn"}}}
    assert workers.ingest_body(body(decision)).accepted == 1
    assert consent.generation != generation  # memory-only views (serving's consent) reload
    assert consent.states_of([subject])[subject] == {"personalization": "withdrawn"}


def test_people_erased_here_are_registered_afresh_by_a_worker(workers_of) -> None:
    runtime, workers = workers_of(1, privacy={"pseudonymize": True})
    identify = {"type": "identify", "user_id": "kim", "traits": {"plan": "pro"}}
    assert workers.ingest_body(body(identify)).accepted == 1
    runtime.catch_up()
    runtime.privacy.erasure.erase("kim")
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subjects)).scalar_one() == 0
    # The worker had kim's subject row and data key cached: both were erased with kim.
    assert workers.ingest_body(body(identify)).accepted == 1
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subjects)).scalar_one() == 1
    # ...under a new data key that this process can open.
    assert runtime.privacy.registry.raw_id(runtime.subject_keys.user("kim")) == "kim"


def _coalesced(size: int) -> float:
    """How many worker messages so far carried at most ``size`` requests."""
    return REGISTRY.get_sample_value("attune_ingest_worker_requests_bucket", {"le": f"{size:.1f}"}) or 0.0


@contextmanager
def appends_held(runtime: Runtime) -> Iterator[None]:
    """Every append waits until the block ends (as behind a stalled disk flush)."""
    if runtime.engine.dialect.name == "postgresql":
        from attune.log.sql import _PG_APPEND_LOCK

        with runtime.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_APPEND_LOCK})
            yield
    else:
        from attune.log.gate import write_gate

        with write_gate(runtime.engine).hold(urgent=True):
            yield


def test_requests_waiting_for_a_busy_worker_travel_together_and_each_gets_its_own_answer(workers_of) -> None:
    from concurrent.futures import ThreadPoolExecutor

    runtime, workers = workers_of(1)
    singles, up_to_4 = _coalesced(1), _coalesced(4)
    requests = [body(view(0)), body(view(1), {"type": "view"}), b"{not json", body(view(2), view(0)),
                body(*[view(n) for n in range(3, 6)])]
    with ThreadPoolExecutor(len(requests)) as pool:
        # The first request occupies the worker, whose append waits; the others queue for it.
        with appends_held(runtime):
            first = pool.submit(workers.ingest_body, requests[0])
            time.sleep(0.5)
            rest = [pool.submit(workers.ingest_body, raw) for raw in requests[1:]]
            time.sleep(0.5)
            assert not first.done() and not any(f.done() for f in rest)
        assert first.result(timeout=30).accepted == 1
        reports = []
        for future in rest:
            try:
                reports.append(future.result(timeout=30))
            except BadRequest as exc:
                reports.append(exc)
    # The first went alone; the four that waited went in one message, answered each in turn.
    assert (_coalesced(1) - singles, _coalesced(4) - up_to_4) == (1, 2)
    assert (reports[0].accepted, [r.index for r in reports[0].rejected]) == (1, [1])
    assert isinstance(reports[1], BadRequest)
    assert (reports[2].accepted, reports[2].duplicate_indices) == (1, [1])  # e0 came first
    assert reports[3].accepted == 3
    assert sorted(e.event.event_id for e in runtime.log.read(0, 10)) == [f"e{n}" for n in range(6)]


def test_a_caller_whose_request_did_not_fit_in_the_message_it_sent_sends_another(workers_of, monkeypatch) -> None:
    from attune.ingest import workers as workers_module

    monkeypatch.setattr(workers_module, "MAX_COALESCED", 2)
    runtime, workers = workers_of(1)
    # Three older requests are waiting (their callers not yet woken) when this caller finds
    # the worker idle: it sends the two oldest, then must send the third with its own.
    older = [workers_module._Ticket(("ingest", body(view(n)))) for n in range(3)]
    with workers._dispatch:
        workers._waiting.extend(older)
    pairs = _coalesced(2) - _coalesced(1)
    report = workers.ingest_body(body(view(3)))
    assert report.accepted == 1
    assert all(t.done.is_set() and t.report.accepted == 1 for t in older)
    assert _coalesced(2) - _coalesced(1) - pairs == 2  # two messages of two requests each
    assert sorted(e.event.event_id for e in runtime.log.read(0, 10)) == ["e0", "e1", "e2", "e3"]


def test_a_worker_that_dies_costs_its_batch_a_503_and_is_replaced(workers_of) -> None:
    runtime, workers = workers_of(2)
    assert workers.ingest_body(body(view(0))).accepted == 1
    victims = workers.pids()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    for pid in victims:  # dead (a zombie until the pool reaps it), not merely signalled
        deadline = time.monotonic() + 30
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    with pytest.raises(Unavailable):
        workers.ingest_body(body(view(1)))
    # The client sends the batch again until it is taken (as Segment's SDKs do on a 503).
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(workers.ingest_body(body(view(1))).accepted)
            break
        except Unavailable:
            outcomes.append("503")
    assert outcomes[-1] == 1 and outcomes.count("503") <= 1  # only the other dead worker's turn
    assert workers.wait_ready(every=True)
    assert len(workers.pids()) == 2 and not set(victims) & set(workers.pids())
    for n in range(2, 6):  # both replacements take batches
        assert workers.ingest_body(body(view(n))).accepted == 1
    # Nothing acknowledged was lost, nothing was stored twice.
    assert [e.event.event_id for e in runtime.log.read(0, 10)] == [f"e{n}" for n in range(6)]


def test_batches_go_to_workers_through_the_api_and_readyz_shows_them(workers_of, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from attune.api.app import create_app
    from attune.api.routes import events as events_route

    runtime, _workers = workers_of(1)  # every body goes to a worker by default, single events too

    def not_here(*_args) -> None:
        raise AssertionError("ingested in the serving process")

    monkeypatch.setattr(events_route, "ingest_events_body", not_here)  # the worker has its own copy
    admin = runtime.keys.create(frozenset({"admin"}), name="test-admin")[1]
    before = accepted_total()
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {admin}"}) as client:
        answer = client.post("/v1/events?wait=true", content=body(view(0), view(1)),
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2
        # wait=true: the consumers were woken and have the events.
        assert client.get("/v1/users/ana/profile").json()["event_counts"] == {"view": 2}
        ready = client.get("/readyz").json()
        assert ready["ingest_workers"] == {"running": 1, "ready": True}
    assert accepted_total() - before == 2


def test_default_worker_count_is_one_per_core_and_none_on_one_core() -> None:
    assert [default_worker_count(cpus) for cpus in (1, 2, 4, 16)] == [0, 2, 4, 4]


def test_stopping_leaves_no_worker_behind_whether_started_or_not(make_runtime) -> None:
    runtime = make_runtime()
    starting = runtime.start_ingest_workers(2)  # stopped at once: still importing
    processes = [w.process for w in starting._workers]
    runtime.stop_ingest_workers()
    assert not any(p.is_alive() for p in processes)
    started = runtime.start_ingest_workers(2)
    assert started.wait_ready(every=True)
    processes = [w.process for w in started._workers]
    assert started.ingest_body(body(view(0))).accepted == 1
    runtime.stop_ingest_workers()
    assert not any(p.is_alive() for p in processes)
    assert [p.exitcode for p in processes] == [0, 0]  # told to stop, not killed
    assert runtime.ingest_workers is None
