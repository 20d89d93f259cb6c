"""Stream rows out of CSV/TSV, JSON Lines and Parquet files, in chunks, with their line numbers.

A reader never holds the whole file: delimited and JSON Lines files are read line by line
from a binary handle (so progress can be counted in bytes), Parquet files batch by batch.
Each row carries the number a person would look for in the file: the physical line where
a CSV record starts (the header is line 1), the line of a JSON Lines object, or the
1-based row number of a Parquet row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from attune.errors import BadRequest

#: Rows per chunk handed to the mapping and the store.
CHUNK_ROWS = 5000

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".data": "\t"}
JSON_LINES = (".jsonl", ".ndjson", ".json")
PARQUET = (".parquet", ".pq")

#: Given the first record of a delimited file, the column names to use when that record
#: is data rather than a header (``None``: it is a header).
HeaderlessLayout = Callable[[list[str]], list[str] | None]


@dataclass(slots=True)
class SourceRow:
    """One row of the file: its line (or row) number and its values, or why it is unreadable.

    ``values`` maps column names to cells; absent cells are left out. ``text`` is true when
    every value is text that still needs converting (CSV), false when the file typed it.
    """

    line: int
    values: dict[str, Any] | None
    error: str | None = None
    text: bool = False


class Source:
    """A readable file: its columns (when it has a fixed set), its size, its chunks of rows."""

    #: Column names, or ``None`` for JSON Lines (every object names its own fields).
    columns: list[str] | None
    #: Progress total and its unit: ``"bytes"`` or ``"rows"``.
    total: int
    unit: str
    #: Human description of the layout (for example "headerless TSV").
    layout: str

    def chunks(self) -> Iterator[tuple[list[SourceRow], int]]:
        """Yield ``(rows, progress advance in units)`` until the file ends."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle."""


def open_source(path: Path, headerless: HeaderlessLayout | None = None) -> Source:
    """Open ``path`` with the reader its extension names; a clear error for anything else."""
    suffix = path.suffix.lower()
    if suffix in DELIMITERS:
        return DelimitedSource(path, DELIMITERS[suffix], headerless)
    if suffix in JSON_LINES:
        return JsonLinesSource(path)
    if suffix in PARQUET:
        return ParquetSource(path)
    raise BadRequest(
        f"cannot tell the format of {path.name!r} from its extension {suffix or '(none)'!r}: use .csv, "
        ".tsv or .data (tab-separated), .jsonl, .ndjson or .json (JSON Lines), or .parquet"
    )


class _LineFeed:
    """Decoded lines of a binary file, counting bytes and physical lines as they are read.

    Lines that are not valid UTF-8 are decoded with replacement characters and remembered,
    so the row that contains them is rejected instead of silently altered.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.bytes_read = 0
        self.lines_read = 0
        self.bad_lines: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.bytes_read += len(raw)
            self.lines_read += 1
            if self.lines_read == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad_lines.add(self.lines_read)
                yield raw.decode("utf-8", "replace")


class DelimitedSource(Source):
    """CSV (comma) or TSV (tab) with a header row, or headerless when ``headerless`` says so."""

    unit = "bytes"

    def __init__(self, path: Path, delimiter: str, headerless: HeaderlessLayout | None) -> None:
        self.path = path
        self.total = path.stat().st_size
        self._handle = path.open("rb")
        self._feed = _LineFeed(self._handle)
        self._reader = csv.reader(self._feed, delimiter=delimiter)
        kind = "TSV" if delimiter == "\t" else "CSV"
        self._pending: list[tuple[int, list[str]] | tuple[int, csv.Error]] = []
        first = self._next_record()
        if first is None:
            self.close()
            raise BadRequest(f"{path.name} is empty: expected a header row naming the columns")
        line, record = first
        if isinstance(record, csv.Error):
            self.close()
            raise BadRequest(f"{path.name} line {line}: the header cannot be read ({record})")
        cells = [cell.strip() for cell in record]
        layout = headerless(cells) if headerless is not None else None
        if layout is not None:
            self.columns = layout
            self.layout = f"headerless {kind} ({', '.join(layout)})"
            self._pending.append((line, record))
        else:
            self.columns = _check_header(cells, path)
            self.layout = kind

    def _next_record(self) -> tuple[int, list[str] | csv.Error] | None:
        """The next non-blank record and the physical line it starts on."""
        while True:
            start = self._reader.line_num + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                return start, exc
            if record and any(cell.strip() for cell in record):
                return start, record
            # Blank lines separate nothing in a delimited file; they are not rows.

    def chunks(self) -> Iterator[tuple[list[SourceRow], int]]:
        """Rows in chunks, with the bytes consumed since the previous chunk."""
        columns = self.columns or []
        width = len(columns)
        reported = 0
        rows: list[SourceRow] = []
        while True:
            if self._pending:
                item: tuple[int, Any] | None = self._pending.pop()
            else:
                item = self._next_record()
            if item is None:
                break
            line, record = item
            bad_lines = self._feed.bad_lines
            if isinstance(record, csv.Error):
                rows.append(SourceRow(line, None, f"row: cannot be parsed ({record})"))
            elif bad_lines and any(n in bad_lines for n in range(line, self._reader.line_num + 1)):
                rows.append(SourceRow(line, None, "row: is not valid UTF-8 text"))
            elif len(record) != width:
                reason = f"row: has {len(record)} cells but the header names {width} columns"
                if self._reader.line_num > line:
                    reason += f" (it runs on to line {self._reader.line_num}: is a quote left open?)"
                rows.append(SourceRow(line, None, reason))
            else:
                values = {name: cell for name, raw in zip(columns, record) if (cell := raw.strip())}
                rows.append(SourceRow(line, values, None, True))
            if len(rows) >= CHUNK_ROWS:
                yield rows, self._feed.bytes_read - reported
                reported = self._feed.bytes_read
                rows = []
        yield rows, self._feed.bytes_read - reported

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


def _check_header(cells: list[str], path: Path) -> list[str]:
    """Column names from a header row; empty or repeated names are refused."""
    seen: set[str] = set()
    for index, name in enumerate(cells, start=1):
        if not name:
            raise BadRequest(f"{path.name}: column {index} of the header has no name")
        if name in seen:
            raise BadRequest(f"{path.name}: the header names column {name!r} twice")
        seen.add(name)
    return cells


class JsonLinesSource(Source):
    """One JSON object per line; blank lines are skipped."""

    unit = "bytes"
    columns = None
    layout = "JSON Lines"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.total = path.stat().st_size
        self._handle = path.open("rb")
        head = self._handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        self._handle.seek(0)
        if head.startswith(b"["):
            self.close()
            raise BadRequest(
                f"{path.name} holds a JSON array; imports read JSON Lines (one object per line). "
                f"Convert it with: jq -c '.[]' {path.name} > {path.stem}.jsonl"
            )

    def chunks(self) -> Iterator[tuple[list[SourceRow], int]]:
        """Parsed objects in chunks; a line that is not a JSON object becomes a rejected row."""
        rows: list[SourceRow] = []
        consumed = 0
        for line, raw in enumerate(self._handle, start=1):
            consumed += len(raw)
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                rows.append(SourceRow(line, None, f"line: is not valid JSON ({_json_reason(exc)})"))
            else:
                if isinstance(value, dict):
                    rows.append(SourceRow(line, {k: v for k, v in value.items() if v is not None}))
                else:
                    rows.append(
                        SourceRow(line, None, f"line: must be a JSON object, not {_json_kind(value)}")
                    )
            if len(rows) >= CHUNK_ROWS:
                yield rows, consumed
                rows, consumed = [], 0
        yield rows, consumed

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    return f"{exc.msg} at character {exc.pos + 1}"


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


class ParquetSource(Source):
    """A Parquet file read batch by batch; row numbers are 1-based."""

    unit = "rows"
    layout = "Parquet"

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise BadRequest(f"{path.name} is not a readable Parquet file ({exc})") from None
        self.columns = list(self._file.schema_arrow.names)
        self.total = self._file.metadata.num_rows

    def chunks(self) -> Iterator[tuple[list[SourceRow], int]]:
        """Rows in chunks of at most :data:`CHUNK_ROWS`, with how many rows each holds."""
        number = 0
        for batch in self._file.iter_batches(batch_size=CHUNK_ROWS):
            rows = []
            for record in batch.to_pylist():
                number += 1
                rows.append(SourceRow(number, {k: v for k, v in record.items() if v is not None}))
            yield rows, len(rows)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
