"""Placeholder replaced by the lake consumer implementation."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from attune.events.model import LoggedEvent


class LakeConsumer:
    """Writes events to Parquet partitioned by date."""

    name = "lake"
    realtime = False

    def __init__(self, lake_dir: Path, flush_events: int) -> None:
        self.lake_dir = lake_dir
        self.flush_events = flush_events

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        return batch[-1].offset

    def flush(self, conn: Connection) -> int | None:
        return None

    def reset(self, conn: Connection) -> None:
        return None
