"""What an import did: counts, rejected rows with their reasons, and the CSV report of them."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from attune.errors import BadRequest
from attune.events.timestamps import iso

#: Rejected rows kept in memory on the result; the report file always gets every one.
MAX_KEPT_REJECTIONS = 100_000


class RejectedRow(NamedTuple):
    """One rejected row: its line (or Parquet row) number and every reason."""

    line: int
    reasons: list[str]


@dataclass(frozen=True)
class PreviousRun:
    """The last finished import of the same kind from the same file."""

    finished_at: float
    accepted: int
    duplicates: int
    rejected: int


@dataclass
class ImportResult:
    """Counts and rejections of one import run.

    ``accepted`` counts events appended to the log (or items upserted, for items);
    ``duplicates`` events the log already held; ``rejected`` rows refused, each listed in
    ``rejections`` with its line number (the first :data:`MAX_KEPT_REJECTIONS` of them).
    """

    kind: str
    source: str
    layout: str = ""
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    items_upserted: int = 0
    rejections: list[RejectedRow] = field(default_factory=list)
    seconds: float = 0.0
    catch_up_seconds: float = 0.0
    run_id: str = ""
    report_path: Path | None = None
    previous: PreviousRun | None = None

    @property
    def rows_per_second(self) -> float:
        """Rows handled per second over the whole run (catch-up included)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for a person: what was read, what landed, what was refused, how fast."""
        name = Path(self.source).name
        if self.kind == "items":
            outcome = f"{self.items_upserted:,} items upserted"
        else:
            outcome = f"{self.accepted:,} accepted, {self.duplicates:,} duplicates"
        line = (
            f"{self.kind} from {name} ({self.layout}): {self.rows:,} rows: {outcome}, "
            f"{self.rejected:,} rejected in {self.seconds:.1f}s ({self.rows_per_second:,.0f} rows/s)"
        )
        if self.rejections:
            first = self.rejections[0]
            line += f"; first rejected: line {first.line}: {'; '.join(first.reasons)}"
        if self.report_path is not None:
            line += f"; rejected rows written to {self.report_path}"
        if self.previous is not None:
            line += f"; previously imported {iso(self.previous.finished_at)[:19].replace('T', ' ')} UTC"
        return line


class RejectionSink:
    """Collects rejected rows on the result and streams them to the optional CSV report."""

    def __init__(self, result: ImportResult, report_path: Path | None) -> None:
        self.result = result
        self._file: IO[str] | None = None
        self._writer = None
        if report_path is not None:
            try:
                report_path.parent.mkdir(parents=True, exist_ok=True)
                self._file = report_path.open("w", newline="", encoding="utf-8")
            except OSError as exc:
                raise BadRequest(f"cannot write the report to {report_path}: {exc.strerror}") from None
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reasons"])
            result.report_path = report_path

    def add(self, line: int, reasons: list[str]) -> None:
        """Record one rejected row."""
        self.result.rejected += 1
        if len(self.result.rejections) < MAX_KEPT_REJECTIONS:
            self.result.rejections.append(RejectedRow(line, reasons))
        if self._writer is not None:
            self._writer.writerow([line, "; ".join(reasons)])

    def close(self) -> None:
        """Finish the report file."""
        if self._file is not None:
            self._file.close()
            self._file = None
