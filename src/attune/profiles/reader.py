"""Read side of profiles: resolve a person's id to their unified profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select

from attune.errors import NotFound
from attune.events.timestamps import iso
from attune.profiles.identity import SubjectKeys
from attune.profiles.traits import plain
from attune.storage.tables import identity_links, interactions, profiles

if TYPE_CHECKING:
    from attune.privacy.traits_at_rest import TraitVault


@dataclass
class Profile:
    """A unified profile as served by the API."""

    user_id: str
    traits: dict[str, Any]
    trait_sources: dict[str, dict[str, Any]]
    first_seen: float | None
    last_seen: float | None
    event_counts: dict[str, int]
    anonymous_ids: list[str] = field(default_factory=list)
    merged_user_ids: list[str] = field(default_factory=list)
    recent_interactions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with ISO times."""
        return {
            "user_id": self.user_id,
            "traits": self.traits,
            "trait_sources": self.trait_sources,
            "first_seen": iso(self.first_seen) if self.first_seen is not None else None,
            "last_seen": iso(self.last_seen) if self.last_seen is not None else None,
            "event_counts": self.event_counts,
            "anonymous_ids": self.anonymous_ids,
            "merged_user_ids": self.merged_user_ids,
            "recent_interactions": self.recent_interactions,
        }


@dataclass(frozen=True, slots=True)
class Interaction:
    """One item event of a person, as the profiles consumer stored it."""

    item_id: str
    type: str
    ts: float
    value: float | None


@dataclass(frozen=True)
class ServingSnapshot:
    """What serving needs to know about one person, read in one connection.

    ``key`` is the canonical subject key; ``exists`` whether a profile is stored for it;
    ``traits`` plain trait values; ``interactions`` every item event, oldest first.
    """

    key: str
    exists: bool
    traits: dict[str, Any]
    interactions: tuple[Interaction, ...]


class ProfileReader:
    """Answers profile questions from the state the profiles consumer keeps.

    With a ``vault`` (privacy on) stored trait values are sealed; every answer here opens
    them, so callers always see clear values (a person whose key was erased has none).
    """

    def __init__(self, engine: Engine, keys: SubjectKeys, recent: int = 50, vault: TraitVault | None = None) -> None:
        self.engine = engine
        self.keys = keys
        self.recent = recent
        self.vault = vault

    def _open(self, key: str, records: dict[str, Any]) -> dict[str, Any]:
        return self.vault.open_one(key, records) if self.vault is not None else records

    def canonical_key(self, user_id: str) -> str:
        """The canonical subject key of a user id (or of an anonymous id, as a fallback)."""
        if "\x00" in user_id:
            # Ingest refuses control characters in ids, so nobody has this one; PostgreSQL
            # would refuse the query itself.
            return self.keys.user(user_id)
        with self.engine.connect() as conn:
            return self._canonical(conn, user_id)

    def _canonical(self, conn: Connection, user_id: str) -> str:
        for key in (self.keys.user(user_id), self.keys.anon(user_id)):
            target = conn.execute(
                select(identity_links.c.canonical_key).where(identity_links.c.alias_key == key)
            ).scalar()
            if target is not None:
                return target
            if conn.execute(select(profiles.c.user_key).where(profiles.c.user_key == key)).first():
                return key
        return self.keys.user(user_id)

    def serving_snapshot(self, user_id: str) -> ServingSnapshot:
        """Canonical key, traits and every item event of ``user_id`` in one connection.

        Serving keeps these in memory (:class:`attune.recommend.usercache.UserCache`); this is
        the only database read a recommendation request needs, and only on a cache miss.
        """
        if "\x00" in user_id:
            return ServingSnapshot(self.keys.user(user_id), False, {}, ())
        with self.engine.connect() as conn:
            key = self._canonical(conn, user_id)
            traits = conn.execute(select(profiles.c.traits).where(profiles.c.user_key == key)).first()
            rows = conn.execute(
                select(interactions.c.item_id, interactions.c.type, interactions.c.ts, interactions.c.value)
                .where(interactions.c.user_key == key)
                .order_by(interactions.c.ts, interactions.c.event_offset)
            ).all()
        return ServingSnapshot(
            key=key,
            exists=traits is not None,
            traits=plain(self._open(key, dict(traits[0] or {}))) if traits is not None else {},
            interactions=tuple(Interaction(i, t, float(ts), v) for i, t, ts, v in rows),
        )

    def serving_snapshots(self, limit: int) -> dict[str, ServingSnapshot]:
        """Snapshots of up to ``limit`` known users (``u:`` keys that are nobody's alias), by user id.

        One pass over the profiles and interactions tables, to fill serving's cache in bulk
        instead of one miss at a time. Anonymous subjects are left out: an anonymous id's
        canonical key depends on whether a user has the same id, which only a lookup settles.
        """
        with self.engine.connect() as conn:
            aliased = set(conn.execute(select(identity_links.c.alias_key)).scalars())
            people: dict[str, dict[str, Any]] = {}
            for key, traits in conn.execute(
                select(profiles.c.user_key, profiles.c.traits).order_by(profiles.c.last_seen.desc())
            ):
                if len(people) >= limit:
                    break
                if self.keys.is_user(key) and key not in aliased:
                    people[key] = dict(traits or {})
            events: dict[str, list[Interaction]] = {key: [] for key in people}
            query = select(
                interactions.c.user_key,
                interactions.c.item_id,
                interactions.c.type,
                interactions.c.ts,
                interactions.c.value,
            ).order_by(interactions.c.ts, interactions.c.event_offset)
            for key, item_id, kind, ts, value in conn.execution_options(yield_per=50_000).execute(query):
                found = events.get(key)
                if found is not None:
                    found.append(Interaction(item_id, kind, float(ts), value))
        if self.vault is not None:
            people = self.vault.open_many(self.engine, people)  # one key lookup for everyone
        return {
            self.keys.display_id(key): ServingSnapshot(key, True, plain(traits), tuple(events[key]))
            for key, traits in people.items()
        }

    def get(self, user_id: str) -> Profile:
        """The unified profile of ``user_id``; :class:`NotFound` when nobody has that id."""
        key = self.canonical_key(user_id)
        if "\x00" in key:
            raise NotFound(f"no profile for user {user_id!r}")
        with self.engine.connect() as conn:
            row = conn.execute(select(profiles).where(profiles.c.user_key == key)).mappings().first()
            if row is None:
                raise NotFound(f"no profile for user {user_id!r}")
            aliases = (
                conn.execute(select(identity_links.c.alias_key).where(identity_links.c.canonical_key == key))
                .scalars()
                .all()
            )
            recent = conn.execute(
                select(interactions.c.item_id, interactions.c.type, interactions.c.ts, interactions.c.value)
                .where(interactions.c.user_key == key)
                .order_by(interactions.c.ts.desc())
                .limit(self.recent)
            ).all()
        traits = self._open(key, dict(row["traits"] or {}))
        return Profile(
            user_id=self.keys.display_id(key),
            traits=plain(traits),
            trait_sources={
                n: {"source": r.get("source"), "updated_at": iso(r.get("ts", 0))} for n, r in traits.items()
            },
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            event_counts=dict(row["event_counts"] or {}),
            anonymous_ids=sorted(self.keys.display_id(a) for a in aliases if not self.keys.is_user(a)),
            merged_user_ids=sorted(self.keys.display_id(a) for a in aliases if self.keys.is_user(a)),
            recent_interactions=[
                {"item_id": i, "type": t, "timestamp": iso(ts), **({"value": v} if v is not None else {})}
                for i, t, ts, v in recent
            ],
        )

    def seen_items(self, key: str) -> set[str]:
        """Items the subject ``key`` has interacted with."""
        if "\x00" in key:
            return set()
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(interactions.c.item_id).where(interactions.c.user_key == key).distinct()
                ).scalars()
            )

    def exists(self, key: str) -> bool:
        """Whether a profile exists for canonical ``key``."""
        if "\x00" in key:
            return False
        with self.engine.connect() as conn:
            return (
                conn.execute(select(profiles.c.user_key).where(profiles.c.user_key == key)).first()
                is not None
            )
