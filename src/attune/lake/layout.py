"""Where the lake keeps its files, and how a part file is written so readers never see half of one.

Layout: ``<lake_dir>/events/date=YYYY-MM-DD/part-<first offset>-<last offset>.parquet``,
offsets zero-padded to 12 digits so names sort in log order.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

EVENTS_DIR = "events"
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_EPOCH = dt.date(1970, 1, 1)
_TMP_SUFFIX = ".tmp"


def events_dir(lake_dir: Path) -> Path:
    """Directory holding the ``date=…`` partitions of the event table."""
    return lake_dir / EVENTS_DIR


def day_to_date(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (days since 1970-01-01, UTC)."""
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def date_to_day(date: str) -> int:
    """Inverse of :func:`day_to_date`."""
    return (dt.date.fromisoformat(date) - _EPOCH).days


def part_name(first_offset: int, last_offset: int) -> str:
    """File name of a part holding log offsets ``first_offset``..``last_offset``."""
    return f"part-{first_offset:012d}-{last_offset:012d}.parquet"


def written_watermarks(lake_dir: Path) -> dict[int, int]:
    """Highest log offset already on disk per day number; removes temp files a crash left behind.

    Kept per day rather than globally because one flush writes one file per day: a crash
    after some of those files leaves the other days' events unwritten, and they must be
    written again even though their offsets lie below the global maximum.
    """
    marks: dict[int, int] = {}
    root = events_dir(lake_dir)
    if not root.is_dir():
        return marks
    for date_dir in root.iterdir():
        match = _DATE_DIR.match(date_dir.name)
        if match is None or not date_dir.is_dir():
            continue
        day = date_to_day(match.group(1))
        for path in date_dir.iterdir():
            if path.name.endswith(_TMP_SUFFIX):
                path.unlink(missing_ok=True)
                continue
            part = _PART.match(path.name)
            if part is not None:
                marks[day] = max(marks.get(day, -1), int(part.group(2)))
    return marks


def write_part(lake_dir: Path, day: int, table: pa.Table) -> Path:
    """Write ``table`` (sorted by offset) as the day's next part file, atomically and durably.

    The file is written under a temporary name that DuckDB's ``*.parquet`` glob ignores,
    synced, then renamed into place; the directory is synced so the rename survives power loss.
    """
    offsets = table.column("offset")
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    directory = events_dir(lake_dir) / f"date={day_to_date(day)}"
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / part_name(first, last)
    temp = directory / f".{final.name}{_TMP_SUFFIX}"
    with open(temp, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, final)
    _sync_dir(directory)
    return final


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
