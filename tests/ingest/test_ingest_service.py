"""The ingest service: validate, enrich, append; one bad event never drops its neighbours."""

from __future__ import annotations

from prometheus_client import REGISTRY

from attune.ingest.service import IngestService
from attune.runtime import Runtime

NOW = 1_795_348_800.0


def good(n: int, **fields) -> dict:
    return {"event_id": f"e{n}", "type": "view", "user_id": f"u{n}", "item_id": "i1", **fields}


def test_partial_batch_keeps_good_events(runtime: Runtime) -> None:
    report = runtime.ingest.ingest([good(0), {"type": "view"}, good(2), "junk", good(4, value="x")], now=NOW)
    assert report.accepted == 2
    assert [r.index for r in report.rejected] == [1, 3, 4]
    assert report.rejected[0].errors == ["user_id: one of user_id or anonymous_id is required"]
    assert report.rejected[2].errors == ["value: must be a number (got str)"]
    assert report.last_offset == 2
    assert [e.event.event_id for e in runtime.log.read(0, 10)] == ["e0", "e2"]
    assert report.to_dict() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": [{"index": r.index, "errors": r.errors} for r in report.rejected],
    }


def test_duplicates_are_reported_by_request_position(runtime: Runtime) -> None:
    runtime.ingest.ingest([good(1), good(2)], now=NOW)
    report = runtime.ingest.ingest([{"bad": 1}, good(2), good(3), good(1), good(3)], now=NOW)
    assert (report.accepted, report.duplicates) == (1, 3)
    assert report.duplicate_indices == [1, 3, 4]
    assert runtime.log.count() == 3


def test_enrichment_happens_before_append(runtime: Runtime) -> None:
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    runtime.ingest.ingest([good(1, context={"user_agent": ua})], now=NOW)
    event = runtime.log.read(0, 1)[0].event
    assert event.context["device"]["type"] == "mobile"
    assert event.session_id and event.received_at == NOW and event.timestamp == NOW


def test_source_is_recorded_unless_the_event_names_one(runtime: Runtime) -> None:
    runtime.ingest.ingest([good(1), good(2, context={"source": "crm"})], source="pixel", now=NOW)
    runtime.ingest.ingest([good(3)], now=NOW)  # the plain API adds no source
    contexts = [e.event.context for e in runtime.log.read(0, 10)]
    assert [c.get("source") for c in contexts] == ["pixel", "crm", None]


def test_consumers_are_notified_only_for_new_events(runtime: Runtime) -> None:
    calls: list[int] = []
    service = IngestService(runtime.settings.ingest, runtime.log, on_append=lambda: calls.append(1))
    service.ingest([good(1)], now=NOW)
    service.ingest([good(1), {"type": "bad"}], now=NOW)
    service.ingest([], now=NOW)
    assert calls == [1]


def test_prepare_and_append_split(runtime: Runtime) -> None:
    events, positions, rejected = runtime.ingest.prepare([good(1), 5, good(2)], now=NOW)
    assert positions == [0, 2] and [r.index for r in rejected] == [1]
    assert runtime.log.count() == 0  # prepare never writes
    accepted, duplicates, last = runtime.ingest.append(events, source="import")
    assert (accepted, duplicates, last) == (2, [], 2)


def test_metrics_count_accepted_duplicate_and_rejected(runtime: Runtime) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("attune_events_accepted_total", source="metrics-test"),
        sample("attune_events_duplicate_total", source="metrics-test"),
        sample("attune_events_rejected_total", reason="user_id"),
    )
    runtime.ingest.ingest([good(1), good(1), {"type": "view"}], source="metrics-test", now=NOW)
    after = (
        sample("attune_events_accepted_total", source="metrics-test"),
        sample("attune_events_duplicate_total", source="metrics-test"),
        sample("attune_events_rejected_total", reason="user_id"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1.0, 1.0, 1.0]
