"""The profiles consumer: identity stitching, traits, activity counts and interactions."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete

from attune.events.model import Event, LoggedEvent
from attune.privacy.traits_at_rest import (
    TraitVault,
    has_clear,
    has_sealed,
    has_sealed_values,
    open_records,
    open_traits,
    seal_records,
)
from attune.profiles.identity import SubjectKeys
from attune.profiles.traits import TraitRecord, apply_traits, merge_records
from attune.storage.tables import identity_links, interactions, profiles


@dataclass
class ProfileState:
    """A profile held in memory while a batch is applied."""

    key: str
    traits: dict[str, TraitRecord] = field(default_factory=dict)
    first_seen: float | None = None
    last_seen: float | None = None
    event_counts: dict[str, int] = field(default_factory=dict)

    def touch(self, event_type: str, ts: float) -> None:
        """Count one event at time ``ts``."""
        self.event_counts[event_type] = self.event_counts.get(event_type, 0) + 1
        self.first_seen = ts if self.first_seen is None else min(self.first_seen, ts)
        self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)

    def absorb(self, other: ProfileState, priority: dict[str, int]) -> None:
        """Fold another subject's profile into this one (identity merge)."""
        for name, count in other.event_counts.items():
            self.event_counts[name] = self.event_counts.get(name, 0) + count
        for ts in (other.first_seen, other.last_seen):
            if ts is not None:
                self.first_seen = ts if self.first_seen is None else min(self.first_seen, ts)
                self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
        merge_records(self.traits, other.traits, priority)


class ProfilesConsumer:
    """Keeps one profile per person and the interactions attributed to it.

    Stitching: an event that carries both a user id and an anonymous id (an ``identify``,
    or any event sent after login) links the anonymous id to the user. The anonymous
    profile and its interactions are merged into the user's, and later events that carry
    only that anonymous id are attributed to the user. The first user an anonymous id is
    linked to keeps it (a shared device does not move history between people).
    ``alias`` events (``properties.previous_id``, a previous user id or anonymous id) merge
    that id's history into the new user id.

    With a :class:`TraitVault` (privacy on), trait values are stored sealed under the
    person's data key: new values are sealed at save time (one key lookup per batch, only
    for profiles that gained clear values; batches without traits do no cryptography), and
    on a merge the absorbed subject's values are opened under its key so that they are
    re-sealed under the canonical subject's key. Events' own trait values arrive sealed under
    the event's subject key (see :mod:`attune.privacy.transform`) and are opened before they
    are applied; one key lookup per batch serves the events, the merges and the save.
    """

    name = "profiles"
    realtime = True

    def __init__(
        self, keys: SubjectKeys, source_priority: dict[str, int], vault: TraitVault | None = None
    ) -> None:
        self.keys = keys
        self.priority = source_priority
        self.vault = vault

    def handle(self, batch: list[LoggedEvent], conn: Connection) -> int:
        """Apply a batch of events inside the caller's transaction."""
        work = _Batch(conn, self.keys, self.priority, self.vault)
        work.preload(batch)
        for logged in batch:
            work.apply(logged)
        work.save(batch[-1].offset)
        return batch[-1].offset

    def flush(self, conn: Connection) -> None:
        """Nothing is buffered between batches."""
        return None

    def reset(self, conn: Connection) -> None:
        """Delete profiles, links and interactions."""
        for table in (profiles, identity_links, interactions):
            conn.execute(delete(table))


class _Batch:
    """The working set of one batch: links and profiles loaded once, saved once."""

    def __init__(
        self, conn: Connection, keys: SubjectKeys, priority: dict[str, int], vault: TraitVault | None = None
    ) -> None:
        self.conn = conn
        self.vault = vault
        self.keys = keys
        self.priority = priority
        self.links: dict[str, str] = {}
        #: Reverse of ``links`` for the links this batch knows, so a merge re-points in O(aliases).
        self.aliases_of: dict[str, list[str]] = {}
        self.new_links: dict[str, str] = {}
        self.profiles: dict[str, ProfileState] = {}
        self.deleted: set[str] = set()
        #: Subjects merged into another in this batch: their stored rows move at save time.
        self.moved: list[str] = []
        self.pending_interactions: list[tuple] = []
        self.sql = _Sql(conn)
        #: Data-key ciphers loaded in this batch (subject key -> cipher), looked up once.
        self.ciphers: dict[str, AESGCM] = {}

    def preload(self, batch: list[LoggedEvent]) -> None:
        """Load the links and profiles this batch will touch, in two queries."""
        subject_keys: set[str] = set()
        for logged in batch:
            event = logged.event
            if event.user_id is not None:
                subject_keys.add(self.keys.user(event.user_id))
            if event.anonymous_id is not None:
                subject_keys.add(self.keys.anon(event.anonymous_id))
            previous = _previous_id(event)
            if previous is not None:
                subject_keys.update((self.keys.user(previous), self.keys.anon(previous)))
        if not subject_keys:
            return
        if self.vault is not None:
            self._load_event_ciphers(batch)
        for alias, canonical in self.sql.select_in(_LINKS_SQL, list(subject_keys)):
            self.links[alias] = canonical
            self.aliases_of.setdefault(canonical, []).append(alias)
        self._load_profiles(subject_keys | set(self.links.values()))

    def _load_event_ciphers(self, batch: list[LoggedEvent]) -> None:
        """Load the keys of every subject whose event carries sealed traits (one lookup)."""
        wanted = {
            self._subject_of(logged.event)
            for logged in batch
            if has_sealed_values(logged.event.traits)
        }
        if wanted:
            self._ciphers(wanted)

    def _subject_of(self, event: Event) -> str:
        """The key an event's traits are sealed under: its user key, else its anonymous key."""
        if event.user_id is not None:
            return self.keys.user(event.user_id)
        return self.keys.anon(event.anonymous_id)

    def _ciphers(self, keys: Iterable[str]) -> dict[str, AESGCM]:
        """Ciphers of ``keys``; only those not loaded yet in this batch are looked up."""
        assert self.vault is not None
        missing = [key for key in keys if key not in self.ciphers]
        if missing:
            self.ciphers.update(self.vault.ciphers(self.conn, missing))
        return self.ciphers

    def _load_profiles(self, keys: set[str]) -> None:
        missing = [k for k in keys if k not in self.profiles]
        if not missing:
            return
        for key, traits, first_seen, last_seen, counts in self.sql.select_in(_PROFILES_SQL, missing):
            self.profiles[key] = ProfileState(
                key=key,
                traits=dict(_json(traits) or {}),
                first_seen=first_seen,
                last_seen=last_seen,
                event_counts=dict(_json(counts) or {}),
            )

    def resolve(self, key: str) -> str:
        """The canonical subject of ``key``."""
        return self.links.get(key, key)

    def known(self, key: str) -> bool:
        """Whether ``key`` has history: a profile or a link."""
        return key in self.profiles or key in self.links

    def profile(self, key: str) -> ProfileState:
        """The in-memory profile of canonical ``key``, created when new."""
        state = self.profiles.get(key)
        if state is None:
            state = self.profiles[key] = ProfileState(key=key)
        self.deleted.discard(key)
        return state

    def link(self, alias: str, canonical: str) -> None:
        """Point ``alias`` at ``canonical`` and merge the alias's history into it."""
        if alias == canonical or alias in self.links:
            return
        self._point(alias, canonical)
        # Anything that pointed at the alias now points at the canonical subject.
        for other in self.aliases_of.pop(alias, ()):
            self._point(other, canonical)
        if alias not in self.profiles:
            # No profile means the alias was never anyone's canonical subject: no stored
            # links, interactions or pending rows name it, so there is nothing to move.
            return
        absorbed = self.profiles.pop(alias)
        if self.vault is not None and has_sealed(absorbed.traits):
            # Sealed under the alias's key: open now, re-sealed under the canonical key at save.
            aead = self._ciphers([alias]).get(alias)
            absorbed.traits = open_records(aead, absorbed.traits)
        self.profile(canonical).absorb(absorbed, self.priority)
        self.deleted.add(alias)
        # Stored links and interactions naming the alias move in one statement per table at
        # save time, to wherever the alias resolves by then (merges may chain in a batch).
        self.moved.append(alias)

    def _point(self, alias: str, canonical: str) -> None:
        self.links[alias] = canonical
        self.new_links[alias] = canonical
        self.aliases_of.setdefault(canonical, []).append(alias)

    def apply(self, logged: LoggedEvent) -> None:
        """Apply one event."""
        event = logged.event
        user_key = self.keys.user(event.user_id) if event.user_id is not None else None
        anon_key = self.keys.anon(event.anonymous_id) if event.anonymous_id is not None else None
        previous = _previous_id(event)
        if previous is not None and user_key is not None:
            # Segment's previousId may be an earlier user id or an anonymous id: the form with
            # history is linked; when neither has any yet, both are, so later events land on
            # the new user. A previous user id brings everything already merged into it; a
            # device already linked to someone else stays theirs (link() keeps the first link).
            as_user, as_anon = self.keys.user(previous), self.keys.anon(previous)
            user_known, anon_known = self.known(as_user), self.known(as_anon)
            if user_known or not anon_known:
                self.link(self.resolve(as_user), self.resolve(user_key))
            if anon_known or not user_known:
                self.link(as_anon, self.resolve(user_key))
        if user_key is not None and anon_key is not None:
            self.link(anon_key, self.resolve(user_key))
        canonical = self.resolve(user_key if user_key is not None else anon_key)  # type: ignore[arg-type]
        state = self.profile(canonical)
        state.touch(event.type, event.timestamp)
        traits = event.traits
        if traits and self.vault is not None:
            # Sealed under the event's own subject; the profile re-seals under its key at save.
            subject = user_key if user_key is not None else anon_key
            traits = open_traits(self.ciphers.get(subject), traits)
        if traits:
            source = str(event.context.get("source") or "web")
            apply_traits(state.traits, traits, event.timestamp, source, self.priority)
        if event.item_id is not None:
            # Same column order as _INSERT_INTERACTION_SQL; the subject is resolved at save.
            self.pending_interactions.append(
                (logged.offset, canonical, event.item_id, event.type, event.timestamp, event.value)
            )

    def _seal(self) -> None:
        """Seal the clear trait values of every profile about to be saved (one key lookup)."""
        assert self.vault is not None
        clear = [state for state in self.profiles.values() if has_clear(state.traits)]
        if not clear:
            return
        ciphers = self._ciphers([state.key for state in clear])
        for state in clear:
            state.traits = seal_records(ciphers[state.key], state.traits)

    def _flush_interactions(self) -> None:
        if self.pending_interactions:
            resolve = self.resolve
            self.sql.executemany(
                _INSERT_INTERACTION_SQL,
                [(offset, resolve(key), *rest) for offset, key, *rest in self.pending_interactions],
            )
            self.pending_interactions = []

    def save(self, offset: int) -> None:
        """Write links, profiles and interactions of this batch (whose last event is at ``offset``)."""
        if self.moved:
            moves = [(self.resolve(alias), alias) for alias in self.moved]
            self.sql.executemany(_MOVE_LINKS_SQL, moves)
            self.sql.executemany(_MOVE_INTERACTIONS_SQL, moves)
        self._flush_interactions()
        if self.new_links:
            now = time.time()
            self.sql.executemany(_UPSERT_LINK_SQL, [(a, c, now, offset) for a, c in self.new_links.items()])
        if self.deleted:
            self.sql.executemany(_DELETE_PROFILE_SQL, [(key,) for key in self.deleted])
        now = time.time()
        dumps = orjson.dumps
        if self.vault is not None:
            self._seal()
        self.sql.executemany(
            _UPSERT_PROFILE_SQL,
            [
                (
                    state.key,
                    dumps(state.traits).decode(),
                    state.first_seen,
                    state.last_seen,
                    dumps(state.event_counts).decode(),
                    now,
                )
                for state in self.profiles.values()
            ],
        )


# Driver-level statements: this consumer runs them for every batch, and SQLAlchemy's
# per-execution compile and per-row JSON processing cost more than the database work.
# ``?`` is rewritten to ``%s`` for PostgreSQL; ``{in}`` becomes the id list.
_LINKS_SQL = "SELECT alias_key, canonical_key FROM identity_links WHERE alias_key {in}"
_PROFILES_SQL = (
    "SELECT user_key, traits, first_seen, last_seen, event_counts FROM profiles WHERE user_key {in}"
)
_MOVE_LINKS_SQL = "UPDATE identity_links SET canonical_key = ? WHERE canonical_key = ?"
_MOVE_INTERACTIONS_SQL = "UPDATE interactions SET user_key = ? WHERE user_key = ?"
_DELETE_PROFILE_SQL = "DELETE FROM profiles WHERE user_key = ?"
_INSERT_INTERACTION_SQL = (
    "INSERT INTO interactions (event_offset, user_key, item_id, type, ts, value) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_LINK_SQL = (
    "INSERT INTO identity_links (alias_key, canonical_key, linked_at, link_offset) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (alias_key) DO UPDATE SET canonical_key = excluded.canonical_key, "
    "linked_at = excluded.linked_at, link_offset = excluded.link_offset"
)
_UPSERT_PROFILE_SQL = (
    "INSERT INTO profiles (user_key, traits, first_seen, last_seen, event_counts, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_key) DO UPDATE SET traits = excluded.traits, "
    "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
    "event_counts = excluded.event_counts, updated_at = excluded.updated_at"
)
#: Ids per ``IN (…)`` list on SQLite (under its bound-parameter limit on every version).
_IN_CHUNK = 900


class _Sql:
    """Runs this module's statements on the DBAPI connection behind ``conn`` (same transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.raw = conn.connection.driver_connection
        self.pg = conn.dialect.name == "postgresql"

    def _text(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def select_in(self, sql: str, keys: list[str]) -> list[tuple]:
        """Rows of ``sql`` whose ``{in}`` column is one of ``keys``."""
        rows: list[tuple] = []
        cursor = self.raw.cursor()
        try:
            if self.pg:
                # Never prepared: see the docstring of attune.privacy.sqlin.
                cursor.execute(sql.replace("{in}", "= ANY(%s)"), (keys,), prepare=False)
                rows.extend(cursor.fetchall())
            else:
                for start in range(0, len(keys), _IN_CHUNK):
                    chunk = keys[start : start + _IN_CHUNK]
                    cursor.execute(sql.replace("{in}", f"IN ({','.join('?' * len(chunk))})"), chunk)
                    rows.extend(cursor.fetchall())
        finally:
            cursor.close()
        return rows

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        """``sql`` once per row."""
        if not rows:
            return
        cursor = self.raw.cursor()
        try:
            cursor.executemany(self._text(sql), rows)
        finally:
            cursor.close()


def _json(value: Any) -> Any:
    """A JSON column's value: SQLite hands back text, PostgreSQL (psycopg) the parsed value."""
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


def _previous_id(event) -> str | None:  # noqa: ANN001 - Event
    """The ``properties.previous_id`` of an alias event, when it is a usable id."""
    if event.type != "alias":
        return None
    previous = (event.properties or {}).get("previous_id")
    # Ids with control characters are refused at ingest; one already in the log must not
    # stop the consumer (PostgreSQL cannot even query a NUL).
    if isinstance(previous, str | int) and not isinstance(previous, bool):
        text = str(previous).strip()
        if text and "\x00" not in text:
            return text
    return None
