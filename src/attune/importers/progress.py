"""Progress display on stderr: the file being read, then the consumers catching up.

Uses rich; on a terminal the bars animate, elsewhere (CI logs, pipes) rich draws them once
when they finish, so nothing breaks without a TTY. Disabled, every method is a no-op.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from attune.runtime import Runtime


class RowRateColumn(ProgressColumn):
    """Rows handled so far and rows per second (the unit people think in, even for bytes)."""

    def render(self, task: Task) -> Text:
        """``12,000 rows 8,100/s``."""
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = f" {rows / elapsed:,.0f}/s" if elapsed > 0 else ""
        return Text(f"{rows:,} {task.fields.get('noun', 'rows')}{rate}", style="progress.data.speed")


def _progress(console: Console, unit: str) -> Progress:
    # Narrow enough for an 80-column log: rich draws a non-terminal console 80 wide.
    amount = {"bytes": DownloadColumn(), "rows": MofNCompleteColumn()}.get(unit, TaskProgressColumn())
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=20),
        amount,
        RowRateColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class ImportProgress:
    """The progress of one import: reading (bytes or rows) and the catch-up (events)."""

    def __init__(self, enabled: bool, label: str, total: int, unit: str) -> None:
        self.enabled = enabled
        self.label = label
        self.total = total
        self.unit = unit
        self.rows = 0
        self._console = Console(stderr=True) if enabled else None
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> Self:
        if self._console is not None:
            self._progress = _progress(self._console, self.unit)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total or None, rows=0, noun="rows")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def advance(self, amount: int, rows: int) -> None:
        """``amount`` more units read, holding ``rows`` more rows."""
        self.rows += rows
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=amount, rows=self.rows)

    def finish_reading(self) -> None:
        """Mark the file as fully read and close its bar."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.total, rows=self.rows)
        self._stop()

    def catch_up(self, runtime: Runtime) -> int:
        """Run ``runtime.catch_up()`` while showing how far the consumers have got."""
        if self._console is None:
            return runtime.catch_up()
        runners = runtime.pipeline.runners
        head = runtime.log.head()
        start = [runner.cursor for runner in runners]
        # Counted in events: the mean distance the consumers have moved towards the head.
        width = max(1, len(runners))
        total = sum(max(0, head - cursor) for cursor in start) // width
        done = threading.Event()
        with _progress(self._console, "events") as progress:
            task = progress.add_task("catching up", total=total or None, rows=0, noun="events")

            def poll() -> None:
                while not done.wait(0.1):
                    moved = sum(max(0, min(r.cursor, head) - s) for r, s in zip(runners, start, strict=True))
                    progress.update(task, completed=moved // width, rows=moved // width)

            watcher = threading.Thread(target=poll, name="import-catch-up-progress", daemon=True)
            watcher.start()
            try:
                handled = runtime.catch_up()
            finally:
                done.set()
                watcher.join()
            progress.update(task, completed=total, rows=total)
        return handled
