"""The segments consumer: makes membership changes durable, right after the features consumer.

The engine re-evaluates people as the features consumer's listener (in the same lane, right
after their features changed). This consumer runs next in that lane: it writes the changes
(with history and webhook outbox rows) in their own transaction *before* its position is
committed, evaluates anyone of the batch the listener did not name (after a restart the
features consumer may be ahead of this one), and drops the memberships of ids that identity
stitching merged into someone else. Evaluation depends only on the features, so handling a
batch twice changes nothing: replays are safe.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from attune.events.model import LoggedEvent
from attune.privacy.sqlin import select_in
from attune.profiles.identity import SubjectKeys
from attune.segments.engine import SegmentEngine
from attune.storage.tables import events, identity_links


class SegmentsConsumer:
    """Keeps segment memberships durable and complete; realtime (requests wait for it)."""

    name = "segments"
    realtime = True
    #: The segment engine writes memberships in transactions of its own.
    shares_transaction = False

    def __init__(self, engine: SegmentEngine, keys: SubjectKeys) -> None:
        self.engine = engine
        self.keys = keys

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int:
        """Evaluate whoever the listener missed, merge aliases, write the journal."""
        if not self.engine.loaded:
            self.engine.load()
        touched = self._subjects(batch)
        links = self._links(conn, touched)
        self.engine.handle_batch(touched, links)
        self.engine.replayed(batch[-1].offset)
        return batch[-1].offset

    def flush(self, conn: Connection) -> None:  # noqa: ARG002 - the engine writes in its own transaction
        """Write changes made since (lapses are written by the scheduler itself)."""
        self.engine.flush()
        return None

    def reset(self, conn: Connection) -> None:
        """Forget every membership and its history (definitions stay) before a replay; webhooks
        hear only of the memberships that differ once the replay reaches today's head."""
        head = conn.execute(select(func.max(events.c.offset))).scalar() or 0
        self.engine.reset(conn, replay_until=int(head) if head else None)

    def _subjects(self, batch: list[LoggedEvent]) -> set[str]:
        keys = self.keys
        found: set[str] = set()
        for logged in batch:
            event = logged.event
            if event.user_id is not None:
                found.add(keys.user(event.user_id))
            if event.anonymous_id is not None:
                found.add(keys.anon(event.anonymous_id))
            if event.type == "alias":
                previous = (event.properties or {}).get("previous_id")
                if (
                    isinstance(previous, str | int)
                    and not isinstance(previous, bool)
                    and str(previous).strip()
                ):
                    text = str(previous).strip()
                    found.update((keys.user(text), keys.anon(text)))
        return {k for k in found if "\x00" not in k}

    def _links(self, conn: Connection, touched: set[str]) -> dict[str, str]:
        if not touched:
            return {}
        rows = select_in(conn, identity_links, ("alias_key", "canonical_key"), "alias_key", sorted(touched))
        return {alias: canonical for alias, canonical in rows if alias != canonical}
