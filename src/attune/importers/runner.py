"""Run one import: read the file in chunks, map the rows, hand them to ingest or the catalog.

Events of every kind go through ``runtime.ingest.prepare`` and ``append``, the path the HTTP
API takes, so validation, normalization, enrichment and dedupe are the same; items go
through the catalog's checks and upsert. Afterwards the consumers catch up, so profiles and
popularity show the import when the command returns.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from attune.errors import BadRequest
from attune.importers.mapping import EventDraft, ItemDraft, RowMapper, derived_event_id, mapper_for
from attune.importers.progress import ImportProgress
from attune.importers.readers import SourceRow, open_source
from attune.importers.result import ImportResult, RejectionSink
from attune.importers.runs import finish_run, last_run, start_run

if TYPE_CHECKING:
    from attune.runtime import Runtime

#: The context source every imported event carries unless the row names its own.
IMPORT_SOURCE = "import"


def run_import(
    runtime: Runtime,
    kind: str,
    path: Path | str,
    *,
    report_path: Path | str | None = None,
    progress: bool = False,
) -> ImportResult:
    """Import ``path`` as ``kind`` (events, interactions, items or users) and report what happened.

    The format follows the extension: ``.csv``; ``.tsv``, ``.tab`` and ``.data`` (tab-separated);
    ``.jsonl``, ``.ndjson`` and ``.json`` (JSON Lines); ``.parquet``. A delimited interactions
    file whose first row starts with a number and has 3 to 5 cells has no header: its
    columns are ``user_id,item_id,timestamp``, ``user_id,item_id,value,timestamp``
    (MovieLens ``u.data``) or ``user_id,item_id,value,timestamp,event_type``.

    Rows that cannot be imported are counted and listed with their line numbers and reasons
    (and written to ``report_path`` as CSV ``line,reasons``); a file that lacks a required
    column fails at once with :class:`~attune.errors.BadRequest` naming it. Re-importing the
    same file adds nothing: rows without an ``event_id`` get one derived from their content
    (so two identical rows in one file are one event, the second counted as a duplicate).
    A users file may have a ``timestamp`` column dating its traits; every other column
    but ``user_id`` is a trait.
    """
    started = time.perf_counter()
    path = Path(path)
    mapper = mapper_for(kind, max_id_length=runtime.settings.ingest.max_id_length)
    if not path.is_file():
        raise BadRequest(f"{path} is not a file")
    source = open_source(path, mapper.headerless)
    try:
        mapper.check_columns(source.columns, path.name)
        source_name = str(path.resolve())
        result = ImportResult(kind=kind, source=source_name, layout=source.layout)
        sink = RejectionSink(result, Path(report_path) if report_path is not None else None)
        try:
            result.previous = last_run(runtime.engine, kind, source_name)
            result.run_id = start_run(runtime.engine, kind, source_name)
            with ImportProgress(progress, kind, source.total, source.unit) as view:
                for rows, amount in source.chunks():
                    if mapper.emits_events:
                        _import_events(runtime, mapper, rows, result, sink)
                    else:
                        _import_items(runtime, mapper, rows, result, sink)
                    view.advance(amount, len(rows))
                view.finish_reading()
                if mapper.emits_events:
                    caught_up = time.perf_counter()
                    view.catch_up(runtime)
                    result.catch_up_seconds = time.perf_counter() - caught_up
        finally:
            sink.close()
    finally:
        source.close()
    result.seconds = time.perf_counter() - started
    finish_run(runtime.engine, result)
    return result


def _map_rows(
    mapper: RowMapper, rows: list[SourceRow], result: ImportResult
) -> tuple[list[EventDraft | ItemDraft], list[int], list[tuple[int, list[str]]]]:
    """Drafts with their line numbers, and the rows that could not even be mapped."""
    drafts: list[EventDraft | ItemDraft] = []
    lines: list[int] = []
    refused: list[tuple[int, list[str]]] = []
    for row in rows:
        result.rows += 1
        if row.values is None:
            refused.append((row.line, [row.error or "row: cannot be read"]))
            continue
        mapped = mapper.map(row.values, row.text)
        if isinstance(mapped, list):
            refused.append((row.line, mapped))
        else:
            drafts.append(mapped)
            lines.append(row.line)
    return drafts, lines, refused


def _import_events(
    runtime: Runtime, mapper: RowMapper, rows: list[SourceRow], result: ImportResult, sink: RejectionSink
) -> None:
    drafts, lines, refused = _map_rows(mapper, rows, result)
    events = [draft for draft in drafts if isinstance(draft, EventDraft)]
    good, positions, rejected = runtime.ingest.prepare([d.raw for d in events], source=IMPORT_SOURCE)
    refused.extend((lines[r.index], r.errors) for r in rejected)
    for event, position in zip(good, positions, strict=True):
        draft = events[position]
        if draft.derive_id:
            event.event_id = derived_event_id(event, draft.timed)
    accepted, duplicate_indices, _ = runtime.ingest.append(good, source=IMPORT_SOURCE)
    result.accepted += accepted
    result.duplicates += len(duplicate_indices)
    for line, reasons in sorted(refused, key=lambda item: item[0]):
        sink.add(line, reasons)


def _import_items(
    runtime: Runtime, mapper: RowMapper, rows: list[SourceRow], result: ImportResult, sink: RejectionSink
) -> None:
    drafts, _, refused = _map_rows(mapper, rows, result)
    # One upsert statement may not touch a key twice (PostgreSQL refuses); the last row wins.
    latest: dict[str, dict] = {}
    for draft in drafts:
        if isinstance(draft, ItemDraft):
            latest.pop(draft.item_id, None)
            latest[draft.item_id] = draft.attributes
    result.accepted += len(drafts)
    result.items_upserted += runtime.catalog.upsert(latest.items())
    for line, reasons in refused:
        sink.add(line, reasons)
