"""The popularity consumer: weighted interaction totals per item and day."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from attune.events.model import LoggedEvent
from attune.storage.tables import item_daily
from attune.storage.upsert import upsert

SECONDS_PER_DAY = 86400


def event_weight(event_type: str, value: float | None, weights: dict[str, float]) -> float:
    """How much one event counts towards its item's popularity (ratings scale by value/5)."""
    weight = weights.get(event_type, 0.0)
    if event_type == "rating" and value is not None:
        weight *= max(0.0, min(value, 5.0)) / 5.0
    return weight


class PopularityConsumer:
    """Adds each item event's weight into ``item_daily`` (item, UTC day)."""

    name = "popularity"
    realtime = True

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int:
        """Aggregate the batch in memory, then add it with one upsert."""
        totals: dict[tuple[str, int], list[float]] = {}
        for logged in batch:
            event = logged.event
            if event.item_id is None:
                continue
            weight = event_weight(event.type, event.value, self.weights)
            if weight <= 0:
                continue
            key = (event.item_id, int(event.timestamp // SECONDS_PER_DAY))
            entry = totals.setdefault(key, [0.0, 0])
            entry[0] += weight
            entry[1] += 1
        upsert(
            conn,
            item_daily,
            [{"item_id": i, "day": d, "weight": w, "events": n} for (i, d), (w, n) in totals.items()],
            ["item_id", "day"],
            increment=("weight", "events"),
        )
        return batch[-1].offset

    def flush(self, conn: Connection) -> None:
        """Nothing is buffered."""
        return None

    def reset(self, conn: Connection) -> None:
        """Delete all daily totals."""
        conn.execute(delete(item_daily))
