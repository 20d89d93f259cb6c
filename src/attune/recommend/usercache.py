"""People as serving sees them, kept in memory and current without a query per request.

A recommendation request needs a person's canonical key (identity stitching), the items they
have touched (exclusion, fold-in, explanations) and their traits (demographic cold start).
Reading those costs four to six queries; :class:`UserCache` keeps them in memory instead.

How it stays current: the profiles consumer is the only writer of that state, and it moves
along the event log. :class:`ProfileChanges` knows how far it has got (the in-process
pipeline's cursor, a plain attribute read, plus the consumer's committed position in the
database, polled at most every ``poll_seconds`` for consumers running in another process).
When the position moved, the cache reads the new events' ids from the log and drops exactly
the people they mention (user id, anonymous id, an alias's previous id, and everybody whose
canonical key is one of those). So a request right after ``POST /v1/events?wait=true`` sees
the new events, while a quiet system answers every request from memory.

Changes that do not travel through the log (an erasure) call :meth:`UserCache.forget` or
:meth:`UserCache.clear`; entries also expire after ``max_age_seconds`` as a safety net.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from attune.log.protocol import EventLog
from attune.profiles.identity import SubjectKeys
from attune.profiles.reader import Interaction, ProfileReader, ServingSnapshot
from attune.storage.tables import consumer_offsets, identity_links

log = logging.getLogger(__name__)

#: More new events than this between two looks: drop everything rather than read them all.
_MAX_EVENTS_TO_SCAN = 20_000


@dataclass
class UserState:
    """One person, as of the last time the cache read them.

    ``items`` are the distinct items touched, oldest first; ``derived`` holds what each
    served model version computed from this state (seen indices, user vector), so it is
    computed once per person and model, not once per request.
    """

    user_id: str
    key: str
    exists: bool
    traits: dict[str, Any]
    interactions: tuple[Interaction, ...]
    items: tuple[str, ...]
    seen: frozenset[str]
    loaded_at: float
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def has_history(self) -> bool:
        """Whether the person has touched any item."""
        return bool(self.interactions)

    def items_since(self, ts: float | None) -> list[Interaction]:
        """Interactions strictly newer than ``ts`` (all when ``ts`` is None)."""
        if ts is None:
            return list(self.interactions)
        return [i for i in self.interactions if i.ts > ts]


def _state(user_id: str, snapshot: ServingSnapshot) -> UserState:
    items = tuple(dict.fromkeys(i.item_id for i in snapshot.interactions))
    return UserState(
        user_id=user_id,
        key=snapshot.key,
        exists=snapshot.exists,
        traits=snapshot.traits,
        interactions=snapshot.interactions,
        items=items,
        seen=frozenset(items),
        loaded_at=time.monotonic(),
    )


class ProfileChanges:
    """How far the profiles consumer has got, and who the events since a position mention."""

    def __init__(
        self,
        log: EventLog,
        engine: Engine,
        keys: SubjectKeys,
        cursor: Callable[[], int] | None = None,
        consumer: str = "profiles",
        poll_seconds: float = 1.0,
    ) -> None:
        self.log = log
        self.engine = engine
        self.keys = keys
        self.cursor = cursor
        self.consumer = consumer
        #: Without an in-process cursor every look asks the database (always correct, slower).
        self.poll_seconds = poll_seconds if cursor is not None else 0.0
        self._db_position = 0
        self._polled_at = float("-inf")
        self._polling = threading.Lock()

    @classmethod
    def of_pipeline(cls, pipeline: Any, log: EventLog, engine: Engine, keys: SubjectKeys) -> ProfileChanges:
        """Changes of the ``profiles`` consumer of ``pipeline`` (a :class:`~attune.consumers.pipeline.Pipeline`)."""
        runner = pipeline.runner("profiles")
        return cls(log, engine, keys, cursor=lambda: runner.cursor)

    def position(self, allow_query: bool) -> int | None:
        """The consumer's position.

        With ``allow_query`` a due database poll runs here; without, it runs in a background
        thread and the last polled position is used meanwhile (another process's writes are
        seen within about ``poll_seconds``; this process's at once, through the cursor).
        ``None`` only when there is no in-process cursor and a query is not allowed.
        """
        due = time.monotonic() - self._polled_at >= self.poll_seconds
        if due and allow_query:
            self._poll()
        elif due and self.cursor is None:
            return None
        elif due and self._polling.acquire(blocking=False):
            threading.Thread(target=self._poll_then_release, daemon=True, name="profile-changes").start()
        local = self.cursor() if self.cursor is not None else 0
        return max(local, self._db_position)

    def _poll_then_release(self) -> None:
        try:
            self._poll()
        except Exception:
            log.exception("could not read the profiles consumer's position")
        finally:
            self._polling.release()

    def _poll(self) -> None:
        self._polled_at = time.monotonic()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(consumer_offsets.c.position).where(consumer_offsets.c.consumer == self.consumer)
            ).scalar()
        self._db_position = int(found or 0)

    @staticmethod
    def _linked(conn: Any, match: Any, pick: Any, keys: set[str]) -> list[str]:
        """Values of column ``pick`` of the identity links whose ``match`` column is in ``keys``."""
        ordered = sorted(keys)
        found: list[str] = []
        for start in range(0, len(ordered), 500):
            found.extend(conn.execute(select(pick).where(match.in_(ordered[start : start + 500]))).scalars())
        return found

    def mentioned(self, after: int, upto: int) -> set[str] | None:
        """Raw ids and subject keys the events in ``(after, upto]`` mention; ``None`` when too many to read."""
        if upto - after > _MAX_EVENTS_TO_SCAN:
            return None
        out: set[str] = set()
        position = after
        while position < upto:
            batch = self.log.read(position, min(5000, upto - position))
            if not batch:
                break
            for logged in batch:
                if logged.offset > upto:
                    break
                event = logged.event
                previous = (event.properties or {}).get("previous_id") if event.type == "alias" else None
                for raw in (event.user_id, event.anonymous_id, previous):
                    if raw is not None:
                        raw = str(raw)
                        out.update((raw, self.keys.user(raw), self.keys.anon(raw)))
            position = batch[-1].offset
        # An event by an alias lands on its canonical subject, and a merge re-points every
        # alias of the absorbed subject: drop the people cached under the canonical keys the
        # mentioned keys resolve to now, and under every key that resolves to those.
        with self.engine.connect() as conn:
            canonical = set(
                self._linked(conn, identity_links.c.alias_key, identity_links.c.canonical_key, out)
            )
            out |= canonical
            out.update(
                self._linked(
                    conn, identity_links.c.canonical_key, identity_links.c.alias_key, canonical | out
                )
            )
        return out


class UserCache:
    """Canonical key, traits and touched items per user id, in memory (see the module docstring)."""

    def __init__(
        self,
        reader: ProfileReader,
        changes: ProfileChanges | None = None,
        *,
        max_users: int = 200_000,
        max_age_seconds: float = 600.0,
    ) -> None:
        self.reader = reader
        self.changes = changes
        self.max_users = max_users
        self.max_age_seconds = max_age_seconds
        self._users: dict[str, UserState] = {}
        self._by_key: dict[str, set[str]] = {}
        self._synced = 0
        self._epoch = 0
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------
    def peek(self, user_id: str) -> UserState | None:
        """The cached state when it is known current without any database access, else ``None``."""
        if self.changes is None:
            return None
        position = self.changes.position(allow_query=False)
        if position is None or position != self._synced:
            return None
        state = self._users.get(user_id)
        if state is None or time.monotonic() - state.loaded_at > self.max_age_seconds:
            return None
        return state

    def get(self, user_id: str) -> UserState:
        """The current state of ``user_id`` (reads the database on a miss or after changes)."""
        self.sync()
        state = self._users.get(user_id)
        if state is not None and time.monotonic() - state.loaded_at <= self.max_age_seconds:
            return state
        epoch = self._epoch
        state = _state(user_id, self.reader.serving_snapshot(user_id))
        with self._lock:
            # Somebody may have changed while we read: keep the answer for this request only.
            if epoch == self._epoch:
                self._store_locked(state)
        return state

    def preload(self, limit: int | None = None) -> int:
        """Fill the cache with the most recently active known users in one pass; how many were added."""
        self.sync()
        epoch = self._epoch
        snapshots = self.reader.serving_snapshots(min(limit or self.max_users, self.max_users))
        added = 0
        with self._lock:
            if epoch != self._epoch:
                return 0  # changes arrived meanwhile; misses will fill the cache instead
            for user_id, snapshot in snapshots.items():
                if user_id not in self._users:
                    self._store_locked(_state(user_id, snapshot))
                    added += 1
        return added

    def _store_locked(self, state: UserState) -> None:
        if len(self._users) >= self.max_users:
            self._evict()
        self._users[state.user_id] = state
        self._by_key.setdefault(state.key, set()).add(state.user_id)

    # -- keeping current -----------------------------------------------------------
    def sync(self) -> None:
        """Drop the people the log says changed since the last look."""
        if self.changes is None:
            self.clear()  # nothing tells us about changes: never trust an entry
            return
        position = self.changes.position(allow_query=True)
        assert position is not None
        if position == self._synced:
            return
        with self._lock:
            synced = self._synced
            if position == synced:
                return
            mentioned = self.changes.mentioned(synced, position) if position > synced else None
            if mentioned is None:
                self._clear_locked()
            else:
                self._drop_locked(mentioned)
            self._synced = position

    def forget(self, ids: Iterable[str]) -> None:
        """Drop these user ids or subject keys (e.g. after an erasure)."""
        with self._lock:
            self._drop_locked(set(ids))

    def clear(self) -> None:
        """Drop everybody."""
        with self._lock:
            self._clear_locked()

    def __len__(self) -> int:
        return len(self._users)

    def _drop_locked(self, mentioned: set[str]) -> None:
        if not mentioned:
            return
        self._epoch += 1
        doomed = {u for u in mentioned if u in self._users}
        # Whoever shares a mentioned person's subject goes too (their identity may have moved).
        for key in mentioned | {self._users[u].key for u in doomed}:
            doomed |= self._by_key.pop(key, set())
        for user_id in doomed:
            state = self._users.pop(user_id, None)
            if state is not None:
                others = self._by_key.get(state.key)
                if others is not None:
                    others.discard(user_id)
                    if not others:
                        del self._by_key[state.key]

    def _clear_locked(self) -> None:
        self._epoch += 1
        self._users = {}
        self._by_key = {}

    def _evict(self) -> None:
        # Insertion order approximates age: drop the oldest tenth.
        for user_id in list(self._users)[: max(1, self.max_users // 10)]:
            state = self._users.pop(user_id)
            others = self._by_key.get(state.key)
            if others is not None:
                others.discard(user_id)
                if not others:
                    del self._by_key[state.key]
