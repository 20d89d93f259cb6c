"""Erasure (right to be forgotten): a registry of erasers, one per store holding personal data.

:class:`ErasureService.erase` finds every subject key of a person (their user key, the
anonymous and user ids linked to them), then runs the registered erasers: SQL erasers inside
one transaction (with SQLite's ``secure_delete`` on, so freed pages are zeroed), then file
erasers (the Parquet lake), then the shredding of the person's data keys, which makes any
ciphertext copy left behind (backups, replicas) unreadable. Finally the SQLite WAL is
checkpointed and truncated, and PostgreSQL tables are vacuumed, so old row versions do not
linger in free space.

Stores added later (features, segments, caches, model artifacts) register their own eraser::

    runtime.privacy.erasure.register(MyEraser())   # has .name, .phase and .erase(request)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, or_, select

from attune.errors import NotFound
from attune.log.gate import write_gate
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import (
    consent_current,
    consent_history,
    events,
    identity_links,
    interactions,
    profiles,
    subjects,
)

log = logging.getLogger(__name__)

#: Phases, in the order they run.
SQL, FILES, KEYS = "sql", "files", "keys"


@dataclass
class ErasureRequest:
    """Who is being erased, in every form their ids are stored."""

    user_id: str
    #: Every subject key of the person (``u:``/``a:``): canonical, linked and merged ids.
    subject_keys: list[str]
    #: The ids as events and files hold them: raw ids and pseudonyms, without prefixes.
    stored_ids: set[str]
    #: The open transaction SQL-phase erasers run in.
    conn: Connection | None = None
    counts: dict[str, int] = field(default_factory=dict)


class Eraser(Protocol):
    """Removes one store's data about a person; returns how many records went."""

    name: str
    phase: str  # "sql" (runs in request.conn), "files" or "keys"

    def erase(self, request: ErasureRequest) -> int: ...


@dataclass
class SqlKeyEraser:
    """Deletes the rows of ``table`` whose ``columns`` hold one of the person's subject keys."""

    name: str
    table: Table
    columns: tuple[str, ...]
    phase: str = SQL

    def erase(self, request: ErasureRequest) -> int:
        assert request.conn is not None
        condition = or_(*(self.table.c[c].in_(bindparam("keys", expanding=True)) for c in self.columns))
        return request.conn.execute(delete(self.table).where(condition), {"keys": request.subject_keys}).rowcount


@dataclass
class LakeEraser:
    """Rewrites every Parquet part holding the person's rows without them (same file name,
    so the lake's offset watermarks stay valid; a part left empty stays as an empty file)."""

    lake_dir: Path
    name: str = "lake"
    phase: str = FILES

    def erase(self, request: ErasureRequest) -> int:
        root = self.lake_dir / "events"
        if not root.exists():
            return 0
        ids = pa.array(sorted(request.stored_ids), pa.string())
        removed = 0
        for part in sorted(root.glob("date=*/part-*.parquet")):
            table = pq.read_table(part)
            mine = pc.or_kleene(
                pc.is_in(table.column("user_id"), value_set=ids),
                pc.is_in(table.column("anonymous_id"), value_set=ids),
            )
            hits = pc.sum(pc.fill_null(mine, False)).as_py() or 0
            if not hits:
                continue
            kept = table.filter(pc.invert(pc.fill_null(mine, False)))
            temp = part.with_name(f".{part.name}.erase.tmp")
            pq.write_table(kept, temp, compression="zstd")
            temp.replace(part)
            removed += hits
        return removed


@dataclass
class KeyShredEraser:
    """Destroys the person's data keys (crypto-shredding), last of all."""

    shred: Callable[[list[str]], int]
    name: str = "person_keys"
    phase: str = KEYS

    def erase(self, request: ErasureRequest) -> int:
        return self.shred(request.subject_keys)


@dataclass
class LogEraser:
    """Deletes the person's events from the event log.

    The log keeps no per-person index: maintaining one cost every append more than half its
    time (random inserts into two more B-trees), for an operation this rare. So the person's
    offsets are found by one scan, run before the write lock is taken (SQLite runs a
    ``SELECT`` outside the write transaction; PostgreSQL locks nothing while it reads), and
    the rows go by primary key, together with any appended since the scan.
    """

    name: str = "event_log"
    phase: str = SQL

    def erase(self, request: ErasureRequest) -> int:
        assert request.conn is not None
        conn = request.conn
        keys = request.subject_keys
        mine = or_(events.c.user_key.in_(bindparam("keys", expanding=True)),
                   events.c.anon_key.in_(bindparam("keys", expanding=True)))
        head = conn.execute(select(func.max(events.c.offset))).scalar() or 0
        offsets = list(
            conn.execute(select(events.c.offset).where(events.c.offset <= head, mine), {"keys": keys}).scalars()
        )
        removed = 0
        for start in range(0, len(offsets), _OFFSETS_PER_DELETE):
            chunk = offsets[start : start + _OFFSETS_PER_DELETE]
            removed += conn.execute(
                delete(events).where(events.c.offset.in_(bindparam("offsets", expanding=True))), {"offsets": chunk}
            ).rowcount
        removed += conn.execute(
            delete(events).where(events.c.offset > head, mine), {"keys": keys}
        ).rowcount
        return removed


#: Offsets per ``DELETE … IN (…)`` (under SQLite's bound-parameter limit).
_OFFSETS_PER_DELETE = 500


def default_sql_erasers() -> list[Eraser]:
    """The core stores: event log, profiles, links, interactions, consent, subjects."""
    return [
        LogEraser(),
        SqlKeyEraser("profiles", profiles, ("user_key",)),
        SqlKeyEraser("identity_links", identity_links, ("alias_key", "canonical_key")),
        SqlKeyEraser("interactions", interactions, ("user_key",)),
        SqlKeyEraser("consent", consent_current, ("subject_key",)),
        SqlKeyEraser("consent_history", consent_history, ("subject_key",)),
        SqlKeyEraser("subjects", subjects, ("subject_key",)),
    ]


class ErasureService:
    """Finds a person's keys and runs every registered eraser."""

    def __init__(self, engine: Engine, keys: SubjectKeys) -> None:
        self.engine = engine
        self.keys = keys
        self.erasers: list[Eraser] = []
        #: Called between the SQL and the file phase: flush consumer buffers to files.
        self.before_files: list[Callable[[], None]] = []
        #: Called at the end: drop in-memory copies (caches).
        self.after: list[Callable[[ErasureRequest], None]] = []

    def register(self, eraser: Eraser) -> None:
        """Add an eraser (replacing one of the same name)."""
        self.erasers = [e for e in self.erasers if e.name != eraser.name] + [eraser]

    def subject_keys_of(self, user_id: str) -> list[str]:
        """Every stored key of the person ``user_id`` names (empty when nobody is known)."""
        if "\x00" in user_id:
            return []
        start = [self.keys.user(user_id), self.keys.anon(user_id)]
        with self.engine.connect() as conn:
            canonical = set()
            for key in start:
                target = conn.execute(
                    select(identity_links.c.canonical_key).where(identity_links.c.alias_key == key)
                ).scalar()
                canonical.add(target or key)
            if self.keys.user(user_id) in canonical or any(self.keys.is_user(k) for k in canonical):
                # A user id is erased with what is linked to them; an anonymous id alone only
                # when no user of that name exists.
                canonical = {k for k in canonical if self.keys.is_user(k)} or canonical
            aliases = set(
                conn.execute(
                    select(identity_links.c.alias_key).where(
                        identity_links.c.canonical_key.in_(bindparam("keys", expanding=True))
                    ),
                    {"keys": list(canonical)},
                ).scalars()
            )
            found = canonical | aliases
            present = False
            for table, column in ((profiles, "user_key"), (consent_current, "subject_key"), (subjects, "subject_key")):
                present = present or conn.execute(
                    select(table.c[column]).where(table.c[column].in_(bindparam("keys", expanding=True))).limit(1),
                    {"keys": list(found)},
                ).first() is not None
            if not present:
                # Last, as it is a scan: the log keeps no per-person index (see LogEraser).
                present = conn.execute(
                    select(events.c.offset).where(
                        or_(events.c.user_key.in_(bindparam("keys", expanding=True)),
                            events.c.anon_key.in_(bindparam("keys", expanding=True)))
                    ).limit(1),
                    {"keys": list(found)},
                ).first() is not None
        if not present:
            return []
        return sorted(found)

    def erase(self, user_id: str) -> ErasureRequest:
        """Erase everything about ``user_id``; :class:`NotFound` when nothing is held."""
        keys = self.subject_keys_of(user_id)
        if not keys:
            raise NotFound(f"nothing is held about user {user_id!r}")
        stored = {k[2:] for k in keys} | {self.keys.display_id(k) for k in keys}
        request = ErasureRequest(user_id, keys, stored)
        by_phase = {p: [e for e in self.erasers if e.phase == p] for p in (SQL, FILES, KEYS)}
        is_sqlite = self.engine.dialect.name == "sqlite"
        # Queued with the store's other writers: on SQLite the log eraser reads the log, then
        # deletes from it, and an append committed in between would fail that transaction.
        with write_gate(self.engine).hold(urgent=False), self.engine.begin() as conn:
            if is_sqlite:
                # Deleted rows are overwritten with zeros instead of lingering in free pages.
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            request.conn = conn
            for eraser in by_phase[SQL]:
                request.counts[eraser.name] = eraser.erase(request)
        request.conn = None
        for hook in self.before_files:
            hook()
        for eraser in by_phase[FILES] + by_phase[KEYS]:
            request.counts[eraser.name] = eraser.erase(request)
        for hook in self.after:
            hook(request)
        self.compact()
        return request

    def compact(self) -> None:
        """Make deleted data physically gone: SQLite WAL checkpoint(TRUNCATE), PostgreSQL VACUUM."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        elif self.engine.dialect.name == "postgresql":
            tables = [t.name for t in (events, profiles, identity_links, interactions, consent_current,
                                       consent_history, subjects)] + ["person_keys"]
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name in tables:
                    conn.exec_driver_sql(f'VACUUM "{name}"')
