"""The ``import_runs`` table: one row per import, so a re-import can say what happened before."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, insert, select, update

from attune.importers.result import ImportResult, PreviousRun
from attune.storage.tables import import_runs


def last_run(engine: Engine, kind: str, source: str) -> PreviousRun | None:
    """The most recent finished import of ``kind`` from ``source``, if any."""
    query = (
        select(
            import_runs.c.finished_at,
            import_runs.c.accepted,
            import_runs.c.duplicates,
            import_runs.c.rejected,
        )
        .where(
            import_runs.c.kind == kind,
            import_runs.c.source == source,
            import_runs.c.finished_at.is_not(None),
        )
        .order_by(import_runs.c.finished_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return PreviousRun(*row) if row is not None else None


def start_run(engine: Engine, kind: str, source: str) -> str:
    """Record that an import started; return its run id (the run stays unfinished on failure)."""
    run_id = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(
            insert(import_runs).values(
                run_id=run_id,
                kind=kind,
                source=source,
                started_at=time.time(),
                accepted=0,
                duplicates=0,
                rejected=0,
            )
        )
    return run_id


def finish_run(engine: Engine, result: ImportResult) -> None:
    """Record the counts of a finished import."""
    with engine.begin() as conn:
        conn.execute(
            update(import_runs)
            .where(import_runs.c.run_id == result.run_id)
            .values(
                finished_at=time.time(),
                accepted=result.accepted,
                duplicates=result.duplicates,
                rejected=result.rejected,
            )
        )
