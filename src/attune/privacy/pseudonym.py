"""Keyed pseudonyms (HMAC-SHA256) for user and anonymous ids, with key rotation.

A pseudonym looks like ``~p1.<40 hex digits>``: the id of the HMAC key that made it, then
the first 160 bits of HMAC-SHA256(key, raw id). Without the key, a pseudonym cannot be
linked to its raw id (not even by hashing guessed ids). The raw id is kept only in the
``subjects`` table, encrypted under the person's data key, so display and export can show it
and erasure (shredding the data key) makes it unrecoverable.

Rotation: new subjects get pseudonyms under the newest key; a subject already stored under
an older key keeps it (so their history stays in one place) until :func:`rekey` moves every
stored key to the newest one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import nullcontext as _nullcontext

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, select, update

from attune.log.gate import write_gate
from attune.privacy.crypto import KeyShredded, PersonKeys, encrypt_many, insert_ignore_rows
from attune.storage.tables import subjects

_TOKEN = re.compile(r"^~[A-Za-z0-9_-]{1,16}\.[0-9a-f]{40}$")
_DIGEST_BYTES = 20


def is_token(text: str) -> bool:
    """Whether ``text`` is a pseudonym (rather than a raw id)."""
    # The first-character test is the regex's own first step, done without entering it:
    # raw ids (nearly every id checked at ingest and on serving paths) fail it at once.
    return text[:1] == "~" and len(text) <= 58 and _TOKEN.match(text) is not None


class Pseudonymizer:
    """Computes pseudonyms under every configured key; the newest key is used for new subjects."""

    def __init__(self, keys: dict[str, bytes], current: str, cache_size: int = 200_000) -> None:
        if current not in keys:
            raise ValueError(f"current pseudonym key {current!r} is not among the keys")
        self.keys = dict(keys)
        self.current = current
        # Newest first: the order lookups try keys in.
        self.order = [current, *sorted((k for k in keys if k != current), reverse=True)]
        # A pseudonym is a pure function of (raw id, key): the same people come back event
        # after event, so an LRU (C-implemented, thread-safe) saves the HMAC on most events.
        # The current key's has the raw id alone as its key (no tuple built per lookup), and
        # is the one ingestion and serving use; older keys' pseudonyms (rotation) are rarer.
        self._current_cached = functools.lru_cache(maxsize=cache_size)(self._compute_current)
        #: ``current_token(raw_id)`` is ``token(raw_id)``, as one call (ingestion hashes every id).
        self.current_token: Callable[[str], str] = self._current_cached
        self._cached = functools.lru_cache(maxsize=cache_size)(self._compute)
        # Keyed HMAC states, copied per id: saves the key schedule on every miss.
        self._macs = {kid: hmac.new(key, digestmod=hashlib.sha256) for kid, key in self.keys.items()}

    def _compute(self, raw_id: str, kid: str) -> str:
        mac = self._macs[kid].copy()
        mac.update(raw_id.encode("utf-8", "surrogatepass"))
        return f"~{kid}.{mac.digest()[:_DIGEST_BYTES].hex()}"

    def _compute_current(self, raw_id: str) -> str:
        return self._compute(raw_id, self.current)

    def token(self, raw_id: str, key_id: str | None = None) -> str:
        """The pseudonym of ``raw_id`` under ``key_id`` (default: the current key)."""
        if not key_id or key_id == self.current:
            return self._current_cached(raw_id)
        return self._cached(raw_id, key_id)

    def tokens(self, raw_id: str) -> list[str]:
        """The pseudonyms of ``raw_id`` under every key, newest key first."""
        return [self.token(raw_id, kid) for kid in self.order]

    @staticmethod
    def key_id_of(token: str) -> str:
        """The key id a pseudonym was made with."""
        return token[1:].split(".", 1)[0]


class SubjectRegistry:
    """The ``subjects`` table: pseudonymized subject key -> raw id (encrypted under the person's key)."""

    def __init__(self, engine: Engine, person_keys: PersonKeys, cache_size: int = 100_000) -> None:
        self.engine = engine
        self.person_keys = person_keys
        self.cache_size = cache_size
        self._known: OrderedDict[str, str] = OrderedDict()  # subject key -> raw id
        self._lock = threading.Lock()

    def _remember(self, key: str, raw: str) -> None:
        with self._lock:
            self._known[key] = raw
            self._known.move_to_end(key)
            while len(self._known) > self.cache_size:
                self._known.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop cached raw ids (after erasure)."""
        with self._lock:
            for key in keys:
                self._known.pop(key, None)

    def forget_all(self) -> None:
        """Drop every cached raw id (another process erased people it may have named)."""
        with self._lock:
            self._known.clear()

    def register(self, pairs: Iterable[tuple[str, str]], conn: Connection | None = None) -> int:
        """Record (subject key, raw id) pairs not yet known; return how many were new to this process."""
        with self._lock:
            known = self._known
            fresh = {key: raw for key, raw in pairs if key not in known}
        if not fresh:
            return 0
        new_here = len(fresh)
        if conn is None:
            # Registered by another process (an ingest worker, an earlier run): one read finds
            # them, where writing would take the write lock and an fsync per request.
            for key in self._registered(list(fresh)):
                self._remember(key, fresh.pop(key))
            if not fresh:
                return new_here
        now = time.time()
        # One transaction for the new people's data keys and their subject rows; data keys are
        # cached only once it has committed.
        # Through the write gate, as an append (ingest waits for it): on SQLite, a writer that
        # meets the lock held sleeps in the busy handler (1, 2, 5, 10 … ms) instead of queuing.
        gate = write_gate(self.engine, "log").hold(urgent=True) if conn is None else _nullcontext()
        with gate, self.engine.begin() if conn is None else _nullcontext(conn) as tx:
            # Sorted: concurrent batches then lock new rows in one global order, so two of them
            # creating overlapping people wait for each other instead of deadlocking (PostgreSQL).
            ordered = sorted(fresh.items())
            ciphers = self.person_keys.load_or_create(tx, [key for key, _ in ordered])
            sealed = encrypt_many([(ciphers[key], raw.encode("utf-8", "surrogatepass")) for key, raw in ordered])
            rows = [
                (key, Pseudonymizer.key_id_of(key[2:]), blob, now)
                for (key, _), blob in zip(ordered, sealed, strict=True)
            ]
            insert_ignore_rows(tx, subjects.name, ("subject_key", "key_id", "raw_id", "created_at"), rows)
        self.person_keys.remember(ciphers)
        with self._lock:
            self._known.update(fresh)
            for _ in range(len(self._known) - self.cache_size):
                self._known.popitem(last=False)
        return new_here

    def existing(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` are registered subjects."""
        with self._lock:
            hit = {k for k in keys if k in self._known}
        rest = [k for k in keys if k not in hit]
        return hit | self._registered(rest) if rest else hit

    def _registered(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` have a row in ``subjects`` (read from the store, not the cache)."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(subjects.c.subject_key).where(subjects.c.subject_key.in_(bindparam("keys", expanding=True))),
                    {"keys": keys},
                ).scalars()
            )

    def raw_id(self, key: str) -> str | None:
        """The raw id of subject ``key``; ``None`` when unknown or erased."""
        with self._lock:
            raw = self._known.get(key)
        if raw is not None:
            return raw
        with self.engine.connect() as conn:
            blob = conn.execute(select(subjects.c.raw_id).where(subjects.c.subject_key == key)).scalar()
        if blob is None:
            return None
        try:
            raw = self.person_keys.decrypt(key, bytes(blob)).decode("utf-8", "surrogatepass")
        except KeyShredded:
            return None
        self._remember(key, raw)
        return raw


#: (table, column) pairs that hold subject keys; other stores add theirs with :func:`register_key_column`.
KEY_COLUMNS: list[tuple[Table, str]] = []


def register_key_column(table: Table, column: str) -> None:
    """Declare that ``table.column`` holds subject keys, so :func:`rekey` moves them too."""
    if (table, column) not in KEY_COLUMNS:
        KEY_COLUMNS.append((table, column))


def _default_key_columns() -> None:
    from attune.storage import tables as t

    for table, column in (
        (t.events, "user_key"), (t.events, "anon_key"), (t.profiles, "user_key"),
        (t.identity_links, "alias_key"), (t.identity_links, "canonical_key"), (t.interactions, "user_key"),
        (t.consent_current, "subject_key"), (t.consent_history, "subject_key"), (t.subjects, "subject_key"),
    ):
        register_key_column(table, column)


_default_key_columns()


def rekey(
    engine: Engine,
    pseudonymizer: Pseudonymizer,
    registry: SubjectRegistry,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Move every subject stored under an older pseudonym key to the current key; return how many moved.

    Rewrites every registered key column, the ids inside event bodies, and moves each data key.
    Subjects whose data key was shredded cannot be re-keyed (their raw id is gone) and stay.
    The lake is not rewritten: rebuild it with ``attune replay`` afterwards.
    """
    from attune.storage.tables import events

    with engine.connect() as conn:
        stale = conn.execute(
            select(subjects.c.subject_key).where(subjects.c.key_id != pseudonymizer.current)
        ).scalars().all()
    moves: dict[str, str] = {}
    for old in stale:
        raw = registry.raw_id(old)
        if raw is not None:
            moves[old] = old[:2] + pseudonymizer.token(raw)
    if not moves:
        return 0
    # The log first, in one pass (it keeps no per-person index, so one scan per subject
    # would be quadratic); then each subject's other rows. Interrupted, a second run finds
    # the same subjects still stale and finishes. Events appended meanwhile under an old key
    # are caught by a last pass over what came after the first.
    head = _rekey_events(engine, events, moves, after=0)
    moved = 0
    for old, new in moves.items():
        with engine.begin() as conn:
            for table, column in KEY_COLUMNS:
                if table is subjects or table is events:
                    continue
                conn.execute(update(table).where(table.c[column] == old).values({column: new}))
            conn.execute(
                update(subjects).where(subjects.c.subject_key == old)
                .values(subject_key=new, key_id=pseudonymizer.current)
            )
            registry.person_keys.rename(conn, old, new)
        registry.forget([old])
        moved += 1
        if on_progress is not None:
            on_progress(moved)
    _rekey_events(engine, events, moves, after=head)
    return moved


#: Log rows read per chunk while re-keying.
_REKEY_CHUNK = 5_000


def _rekey_events(engine: Engine, events: Table, moves: dict[str, str], *, after: int) -> int:
    """Rewrite the keys (and the ids inside the bodies) of logged events after offset ``after``
    whose user or anonymous key is in ``moves``; return the last offset read."""
    tokens = {old[2:]: new[2:] for old, new in moves.items()}
    offset = after
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(events.c.offset, events.c.user_key, events.c.anon_key, events.c.body)
                .where(events.c.offset > offset).order_by(events.c.offset).limit(_REKEY_CHUNK)
            ).all()
        if not rows:
            return offset
        offset = rows[-1][0]
        changes = []
        for row_offset, user_key, anon_key, body in rows:
            if user_key not in moves and anon_key not in moves:
                continue
            data = orjson.loads(body)
            for field in ("user_id", "anonymous_id"):
                if data.get(field) in tokens:
                    data[field] = tokens[data[field]]
            changes.append({
                "o": row_offset, "u": moves.get(user_key, user_key), "a": moves.get(anon_key, anon_key),
                "b": orjson.dumps(data),
            })
        if changes:
            with write_gate(engine, "log").hold(urgent=False), engine.begin() as conn:
                conn.execute(
                    update(events).where(events.c.offset == bindparam("o"))
                    .values(user_key=bindparam("u"), anon_key=bindparam("a"), body=bindparam("b")),
                    changes,
                )
