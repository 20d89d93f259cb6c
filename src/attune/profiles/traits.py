"""The trait conflict rule.

Each stored trait remembers when and from which source it was set. An incoming value
replaces the stored one when its source has a higher configured priority, or when the
priorities are equal and it is at least as new. So by default the newest timestamp wins;
``profiles.source_priority = {crm = 10}`` makes CRM values stick against newer web values.
"""

from __future__ import annotations

from typing import Any

TraitRecord = dict[str, Any]  # {"value": ..., "ts": epoch seconds, "source": str}


def incoming_wins(stored: TraitRecord, ts: float, source: str, priority: dict[str, int]) -> bool:
    """Whether a value set at ``ts`` by ``source`` replaces ``stored``."""
    new_rank = priority.get(source, 0)
    old_rank = priority.get(stored.get("source", ""), 0)
    if new_rank != old_rank:
        return new_rank > old_rank
    return ts >= stored.get("ts", 0.0)


def apply_traits(
    current: dict[str, TraitRecord],
    incoming: dict[str, Any],
    ts: float,
    source: str,
    priority: dict[str, int],
) -> None:
    """Merge ``incoming`` plain values into ``current`` records, in place, by the rule."""
    for name, value in incoming.items():
        stored = current.get(name)
        if stored is None or incoming_wins(stored, ts, source, priority):
            current[name] = {"value": value, "ts": ts, "source": source}


def merge_records(
    into: dict[str, TraitRecord], other: dict[str, TraitRecord], priority: dict[str, int]
) -> None:
    """Merge another profile's trait records into ``into`` by the same rule (identity merge)."""
    for name, record in other.items():
        stored = into.get(name)
        if stored is None or incoming_wins(stored, record.get("ts", 0.0), record.get("source", ""), priority):
            into[name] = record


def plain(records: dict[str, TraitRecord]) -> dict[str, Any]:
    """Trait values without their metadata."""
    return {name: record["value"] for name, record in records.items()}
