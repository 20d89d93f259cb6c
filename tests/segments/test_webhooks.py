"""Webhook delivery from the durable outbox: retries with backoff, order, restarts, signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from sqlalchemy import Engine, select

from attune.segments.membership import Change
from attune.segments.store import SegmentStore
from attune.segments.webhooks import WebhookDispatcher
from attune.settings import SegmentSettings
from attune.storage.tables import segment_outbox


def write_changes(engine: Engine, urls: list[str], n: int = 3, at: float = 1_700_000_000.0, now=None) -> None:
    changes = [
        Change("fans", f"u:p{i}", "enter" if i % 2 == 0 else "exit", 1.0, at + i, "event", size=i)
        for i in range(n)
    ]
    with engine.begin() as conn:
        SegmentStore(engine).apply(conn, changes, urls, display=lambda key: key[2:], now=now)


def settings(**overrides) -> SegmentSettings:
    return SegmentSettings(**{"webhook_backoff_seconds": 2.0, "webhook_max_attempts": 5, **overrides})


def outbox(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(select(segment_outbox).order_by(segment_outbox.c.id)).mappings()
        ]


def test_retries_with_exponential_backoff_until_delivered(seg_engine, receiver, clock) -> None:
    receiver.fail_first = 3
    write_changes(seg_engine, [receiver.url], n=1, now=clock.now)
    dispatcher = WebhookDispatcher(seg_engine, settings(), clock=clock)
    try:
        waits = []
        for _ in range(3):
            report = dispatcher.deliver_due()
            assert (report.delivered, report.retried) == (0, 1)
            waits.append(report.next_due - clock.now)
            # Not yet due: nothing is attempted before the backoff has passed.
            assert dispatcher.deliver_due().retried == 0
            clock.advance(waits[-1])
        assert waits == [2.0, 4.0, 8.0]
        assert dispatcher.deliver_due().delivered == 1
    finally:
        dispatcher.stop()
    assert receiver.attempts == 4
    assert receiver.received == [
        {
            "type": "segment.entered",
            "segment": "fans",
            "user_id": "p0",
            "confidence": 1.0,
            "reason": "event",
            "at": "2023-11-14T22:13:20Z",
            "size": 0,
        }
    ]
    [row] = outbox(seg_engine)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 4, None)


def test_gives_up_after_max_attempts_and_keeps_the_row(seg_engine, receiver, clock) -> None:
    receiver.fail_first = 100
    write_changes(seg_engine, [receiver.url], n=1, now=clock.now)
    dispatcher = WebhookDispatcher(seg_engine, settings(webhook_max_attempts=3), clock=clock)
    try:
        for _ in range(3):
            dispatcher.deliver_due()
            clock.advance(3600)
        assert dispatcher.deliver_due() == type(dispatcher.deliver_due())()
    finally:
        dispatcher.stop()
    [row] = outbox(seg_engine)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "HTTP 503" in row["last_error"]
    assert receiver.attempts == 3


def test_order_per_url_is_kept_while_the_head_waits(seg_engine, receiver, clock) -> None:
    receiver.fail_first = 1
    write_changes(seg_engine, [receiver.url], n=4, now=clock.now)
    dispatcher = WebhookDispatcher(seg_engine, settings(), clock=clock)
    try:
        first = dispatcher.deliver_due()
        assert (first.delivered, first.retried) == (0, 1)  # the rest waits behind the head
        clock.advance(2.0)
        assert dispatcher.deliver_due().delivered == 4
    finally:
        dispatcher.stop()
    assert [r["user_id"] for r in receiver.received] == ["p0", "p1", "p2", "p3"]
    assert [r["type"] for r in receiver.received] == ["segment.entered", "segment.exited"] * 2


def test_unreachable_url_is_retried_and_other_urls_go_on(seg_engine, receiver, clock) -> None:
    dead = "http://127.0.0.1:9/nothing-listens-here"
    write_changes(seg_engine, [dead, receiver.url], n=2, now=clock.now)
    dispatcher = WebhookDispatcher(seg_engine, settings(webhook_timeout_seconds=2.0), clock=clock)
    try:
        report = dispatcher.deliver_due()
    finally:
        dispatcher.stop()
    assert (report.delivered, report.retried) == (2, 1)
    rows = [r for r in outbox(seg_engine) if r["url"] == dead]
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rows[0]["attempts"] == 1 and "ConnectError" in rows[0]["last_error"]


def test_a_restart_loses_nothing(seg_engine, receiver, clock) -> None:
    receiver.fail_first = 1
    write_changes(seg_engine, [receiver.url], n=2, now=clock.now)
    first = WebhookDispatcher(seg_engine, settings(), clock=clock)
    first.deliver_due()
    first.stop()  # "crash" after a failed attempt: both rows still pending
    clock.advance(10)
    second = WebhookDispatcher(seg_engine, settings(), clock=clock)
    try:
        assert second.deliver_due().delivered == 2
    finally:
        second.stop()
    assert [r["user_id"] for r in receiver.received] == ["p0", "p1"]


def test_background_thread_delivers_and_signs(seg_engine, receiver) -> None:
    receiver.fail_first = 1
    secret = "s3cret"
    dispatcher = WebhookDispatcher(
        seg_engine, settings(webhook_backoff_seconds=0.05, webhook_poll_seconds=0.05, webhook_secret=secret)
    )
    dispatcher.start()
    try:
        write_changes(seg_engine, [receiver.url], n=2)
        dispatcher.notify()
        deadline = time.monotonic() + 10
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        dispatcher.stop()
    assert [r["user_id"] for r in receiver.received] == ["p0", "p1"]
    for body, headers in zip(receiver.received, receiver.headers, strict=True):
        raw = json.dumps(body, separators=(",", ":")).encode()
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Attune-Signature"] == f"sha256={expected}"


def announced(runtime) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    from attune.storage.tables import segment_outbox

    with runtime.engine.connect() as conn:
        rows = conn.execute(select(segment_outbox.c.payload).order_by(segment_outbox.c.id)).scalars().all()
    return [(p["type"], p["segment"], p["user_id"]) for p in rows]


def test_replay_and_evaluate_announce_only_real_changes(make_runtime) -> None:
    import time

    runtime = make_runtime(segments={"webhook_urls": ["http://127.0.0.1:9/hook"]})  # never started: rows stay
    now = time.time()
    runtime.segments.apply_definitions(
        {"fans": {"rule": "count(view, window=7d) >= 2"}, "new": {"rule": "frequency <= 1"}}
    )
    for user, n in (("u1", 3), ("u2", 1)):
        for j in range(n):  # one event per batch: u1 passes through "new" on the way to "fans"
            assert not runtime.ingest.ingest(
                [{"type": "view", "user_id": user, "item_id": f"i{j}", "timestamp": now - 60 * (j + 1)}]
            ).rejected
            runtime.catch_up()
    before = announced(runtime)
    assert ("segment.entered", "fans", "u1") in before and ("segment.entered", "new", "u2") in before
    held = {k: runtime.segments.segments_of(k) for k in ("u:u1", "u:u2")}
    # A replay rebuilds the same memberships: nothing new is announced.
    runtime.pipeline.replay()
    assert {k: [(m.name, m.confidence) for m in runtime.segments.segments_of(k)] for k in held} == {
        k: [(m.name, m.confidence) for m in v] for k, v in held.items()
    }
    assert announced(runtime) == before
    # Nor does a re-evaluation with nothing to change.
    assert runtime.segments.evaluate_all(as_of=runtime.segments.clock())["entered"] == 0
    assert announced(runtime) == before
    # A replay after a definition changed announces exactly the differences.
    runtime.segments.apply_definitions({"fans": {"rule": "count(view, window=7d) >= 1"}}, reevaluate=False)
    runtime.pipeline.replay()
    assert announced(runtime) == [*before, ("segment.entered", "fans", "u2")]
