"""Scheduled retraining: a background timer the ``serve`` (or ``worker``) role can run.

Off by default; ``[training] retrain_every_hours = 24`` in ``attune.toml`` (or
``ATTUNE_TRAINING__RETRAIN_EVERY_HOURS``) turns it on. A run is skipped when the store holds
no interaction that was not there at the previous run, and a failing run is logged and
retried at the next tick: the serving process never stops because training failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from attune.storage.tables import interactions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataMark:
    """How far the interactions table has grown: row count and newest event offset."""

    rows: int
    last_offset: int | None


def data_mark(engine: Engine) -> DataMark:
    """The current :class:`DataMark` of the store."""
    with engine.connect() as conn:
        rows, last = conn.execute(select(func.count(), func.max(interactions.c.event_offset))).one()
    return DataMark(int(rows or 0), None if last is None else int(last))


class RetrainScheduler:
    """Calls ``job`` every ``interval_seconds`` on a daemon thread until :meth:`stop`.

    ``changed`` (optional) tells whether there is anything new to learn from; when it returns
    False the tick is skipped. ``job``'s exceptions are logged and kept in ``last_error``.
    """

    def __init__(
        self,
        job: Callable[[], Any],
        interval_seconds: float,
        *,
        changed: Callable[[], bool] | None = None,
        name: str = "attune-retrain",
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.job = job
        self.interval_seconds = interval_seconds
        self.changed = changed
        self.runs = 0
        self.skipped = 0
        self.failures = 0
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> RetrainScheduler:
        """Start the timer thread (the first run is one interval from now)."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the run in progress, if any."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def tick(self) -> bool:
        """One scheduled run now: True when the job ran (successfully or not)."""
        try:
            if self.changed is not None and not self.changed():
                self.skipped += 1
                return False
            self.last_result = self.job()
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - a failed retraining must not kill the server
            self.failures += 1
            self.last_error = exc
            log.warning("scheduled retraining failed: %s", exc)
        finally:
            self.runs += 1
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.tick()


def retraining_for(runtime: Any) -> RetrainScheduler | None:
    """The scheduler the settings of ``runtime`` ask for, not started; None when retraining is off."""
    training = runtime.settings.training
    if training.retrain_every_hours is None:
        return None
    from attune.training.trainer import train

    # The data mark of the last successful run: a failed run is retried at the next tick.
    trained: dict[str, DataMark] = {}

    def changed() -> bool:
        mark = data_mark(runtime.engine)
        trained["pending"] = mark
        return mark.rows > 0 and mark != trained.get("done")

    def job() -> Any:
        report = train(
            runtime.engine,
            runtime.settings,
            training.retrain_model,
            promote=training.retrain_promote,
            actor="scheduler",
        )
        trained["done"] = trained["pending"]
        log.info("scheduled retraining registered %s (%s)", report.version.version, report.name)
        return report

    return RetrainScheduler(job, training.retrain_every_hours * 3600.0, changed=changed)
