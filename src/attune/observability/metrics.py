"""Prometheus metrics (process-wide, as Prometheus expects)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("attune_events_accepted_total", "Events appended to the log.", ["source"])
EVENTS_DUPLICATE = Counter("attune_events_duplicate_total", "Events ignored as duplicates.", ["source"])
EVENTS_REJECTED = Counter(
    "attune_events_rejected_total", "Events rejected by validation, by the first faulty field.", ["reason"]
)
APPEND_SECONDS = Histogram(
    "attune_log_append_seconds",
    "Time to append one batch durably.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
INGEST_WORKER_REQUESTS = Histogram(
    "attune_ingest_worker_requests",
    "Requests an ingest worker took in one message (those that waited while every worker was busy travel together).",
    buckets=(1, 2, 4, 8, 16, 32),
)
REQUEST_SECONDS = Histogram(
    "attune_http_request_seconds",
    "HTTP request latency by route.",
    ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CONSUMER_EVENTS = Counter("attune_consumer_events_total", "Events handled by each consumer.", ["consumer"])
CONSUMER_ERRORS = Counter("attune_consumer_errors_total", "Failed consumer batches (retried).", ["consumer"])
CONSUMER_POSITION = Gauge("attune_consumer_position", "Offset each consumer has handled.", ["consumer"])
CONSUMER_BATCH_SECONDS = Histogram(
    "attune_consumer_batch_seconds", "Time to handle one batch, by consumer.", ["consumer"]
)
LOG_HEAD = Gauge("attune_log_head", "Highest offset in the event log.")
