"""Segment size over time, from the hourly roll-up the store keeps with every change."""

from __future__ import annotations

from typing import Any

from attune.events.timestamps import iso
from attune.segments.store import HOUR, SegmentStore

BUCKETS = {"hour": HOUR, "day": 24 * HOUR}


def size_series(
    store: SegmentStore, segment: str, start: float | None = None, end: float | None = None, bucket: str = "hour"
) -> list[dict[str, Any]]:
    """``[{"at", "entries", "exits", "size"}]`` per hour or day with changes, in time order.

    ``size`` is the segment's size at the end of the bucket; buckets without changes are left
    out (the size carries over from the previous one).
    """
    width = BUCKETS[bucket]
    series: dict[int, dict[str, Any]] = {}
    for row in store.sizes(segment, start, end):
        index = int(row["hour"] // width)
        entry = series.get(index)
        if entry is None:
            entry = series[index] = {"at": iso(index * width), "entries": 0, "exits": 0, "size": 0}
        entry["entries"] += row["entries"]
        entry["exits"] += row["exits"]
        entry["size"] = row["size"]
    return [series[i] for i in sorted(series)]
