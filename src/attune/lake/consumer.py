"""The lake consumer: buffers events column by column and writes them as date-partitioned Parquet."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from attune.events.model import LoggedEvent
from attune.lake.layout import events_dir, write_part, written_watermarks
from attune.lake.schema import EVENT_SCHEMA

_MICROS_PER_DAY = 86_400 * 1_000_000
_DAY = "__day"
#: The buffer's columns: the file schema plus the UTC day number that picks the partition.
_BUFFER_COLUMNS = (*EVENT_SCHEMA.names, _DAY)
_EMPTY: dict[str, Any] = {}


class LakeConsumer:
    """Writes every event of the log to ``<lake_dir>/events/date=YYYY-MM-DD/part-*.parquet``.

    Events are buffered as one Python list per column and written when ``flush_events`` are
    buffered or when the pipeline calls :meth:`flush`. Files are not transactional with the
    consumer position, so exactly-once comes from the file names instead: each part names the
    offsets it holds, and events at or below what is already on disk for their day are skipped
    (a crash between writing a file and committing the position replays them harmlessly).
    """

    name = "lake"
    realtime = False
    #: The files are the state: the runner commits only the position, outside Parquet writes,
    #: so appends never wait behind a file being written and synced.
    transactional = False

    def __init__(self, lake_dir: Path, flush_events: int) -> None:
        self.lake_dir = lake_dir
        self.flush_events = max(1, flush_events)
        self._lock = threading.Lock()
        self._columns: dict[str, list[Any]] = {}
        self._clear_buffer()
        #: Highest offset on disk per UTC day number; read from the file names on first use.
        self._watermarks: dict[int, int] | None = None
        self._highest_written = -1
        #: Highest offset already buffered or skipped, so a batch retried after a failure is not doubled.
        self._last_seen = -1
        #: Last offset handed to the consumer that is not yet known durable.
        self._pending: int | None = None

    # -- Consumer protocol -------------------------------------------------
    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int | None:
        """Buffer ``batch``; write and return its last offset once ``flush_events`` are buffered."""
        if not batch:
            return None
        with self._lock:
            # All or nothing: a batch that fails to convert leaves the buffer as it was.
            self._buffer(batch)
            self._last_seen = max(self._last_seen, batch[-1].offset)
            self._pending = batch[-1].offset
            if len(self._columns["offset"]) >= self.flush_events:
                return self._write()
            if not self._columns["offset"]:
                # Everything handed over so far was already on disk (replay after a crash).
                return self._take_pending()
            return None

    def flush(self, conn: Connection) -> int | None:
        """Write whatever is buffered; return the last offset now durable, or ``None`` if idle."""
        with self._lock:
            if self._columns["offset"]:
                return self._write()
            return self._take_pending()

    def reset(self, conn: Connection) -> None:
        """Delete every part file and forget the buffer (before a replay)."""
        with self._lock:
            shutil.rmtree(events_dir(self.lake_dir), ignore_errors=True)
            self._clear_buffer()
            self._watermarks = {}
            self._highest_written = -1
            self._last_seen = -1
            self._pending = None

    # -- internals ---------------------------------------------------------
    def _clear_buffer(self) -> None:
        self._columns = {name: [] for name in _BUFFER_COLUMNS}

    def _take_pending(self) -> int | None:
        pending, self._pending = self._pending, None
        return pending

    def _load_watermarks(self) -> dict[int, int]:
        if self._watermarks is None:
            self._watermarks = written_watermarks(self.lake_dir)
            self._highest_written = max(self._watermarks.values(), default=-1)
        return self._watermarks

    def _buffer(self, batch: list[LoggedEvent]) -> None:
        watermarks = self._load_watermarks()
        last_seen = self._last_seen
        floor = max(self._highest_written, last_seen)
        rows = []
        for logged in batch:
            event = logged.event
            micros = round(event.timestamp * 1_000_000)
            day = micros // _MICROS_PER_DAY
            offset = logged.offset
            if offset <= floor and (offset <= last_seen or offset <= watermarks.get(day, -1)):
                continue
            context = event.context
            # Context is free-form JSON: anything but an object where one is expected counts as absent.
            device = context.get("device")
            if type(device) is not dict:
                device = _EMPTY
            geo = context.get("geo")
            if type(geo) is not dict:
                geo = _EMPTY
            page = context.get("page")
            if type(page) is not dict:
                page = _EMPTY
            # Same order as _BUFFER_COLUMNS.
            rows.append(
                (
                    offset,
                    event.event_id,
                    event.type,
                    event.user_id,
                    event.anonymous_id,
                    event.item_id,
                    event.value,
                    micros,
                    round(event.received_at * 1_000_000),
                    event.session_id,
                    device.get("type"),
                    device.get("os"),
                    device.get("browser"),
                    geo.get("country"),
                    geo.get("city"),
                    context.get("timezone"),
                    page.get("url"),
                    page.get("referrer"),
                    context.get("source"),
                    orjson.dumps(event.properties).decode() if event.properties else None,
                    orjson.dumps(event.traits).decode() if event.traits is not None else None,
                    day,
                )
            )
        if rows:
            # Transposing the batch's rows (in C) is much faster than appending to 21 lists per event.
            for name, values in zip(_BUFFER_COLUMNS, zip(*rows, strict=True), strict=True):
                self._columns[name].extend(values)

    def _write(self) -> int | None:
        """Write the buffer as one part file per day; return the last offset handed over."""
        cols = self._columns
        table = pa.table(
            [_array(cols[field.name], field.type) for field in EVENT_SCHEMA], schema=EVENT_SCHEMA
        )
        days = pa.array(cols[_DAY], type=pa.int64())
        watermarks = self._load_watermarks()
        for day, part in _split_by_day(table, days):
            last = part.column("offset")[-1].as_py()
            if watermarks.get(day, -1) >= last:
                continue  # written by an earlier attempt of this flush that failed on another day
            write_part(self.lake_dir, day, part)
            watermarks[day] = max(watermarks.get(day, -1), last)
            self._highest_written = max(self._highest_written, last)
        self._clear_buffer()
        return self._take_pending()


def _split_by_day(table: pa.Table, days: pa.Array) -> list[tuple[int, pa.Table]]:
    """Rows of ``table`` grouped by day number, each group in offset order."""
    if len(pc.unique(days)) == 1:
        return [(days[0].as_py(), table)]
    # Offsets already ascend and the sort is stable, so each day's rows stay in log order.
    order = pc.sort_indices(days)
    sorted_table = table.take(order)
    runs = pc.run_end_encode(days.take(order))
    groups = []
    start = 0
    for day, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        groups.append((day, sorted_table.slice(start, end - start)))
        start = end
    return groups


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """One column as Arrow; context values are free-form JSON, so a non-string becomes JSON text."""
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if kind != pa.string():
            raise
        # Rare (a client sent a number or object where a string belongs): coerce only this column.
        return pa.array([_text(value) for value in values], type=kind)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
