"""Consent: purposes, decisions with history, defaults by mode, and a fast ``allows`` check.

A decision is ``granted``, ``denied`` or ``withdrawn`` for one purpose of one subject (a user
key or an anonymous key), with the time and the source that recorded it. The current state
lives in ``consent_current``, every decision ever made in ``consent_history``.

Resolution of ``allows(subject, purpose)``: the subject's canonical person (a user's consent
covers the anonymous ids linked to them) decides first, then the subject's own decision,
then the default: granted for opt-out purposes, denied for opt-in ones. ``withdrawn`` and
``denied`` both refuse. Answers are cached in memory; a change made through this service
clears the cache at once (withdrawal takes effect on the next request), changes made by
other processes are seen after ``consent_cache_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, bindparam, delete, insert, select

from attune.errors import ValidationFailed
from attune.events.model import Event
from attune.privacy.sqlin import select_in
from attune.profiles.identity import SubjectKeys
from attune.settings import PrivacySettings
from attune.storage.tables import consent_current, consent_history, identity_links
from attune.storage.upsert import upsert

if TYPE_CHECKING:
    from attune.privacy.changes import SharedCounter

STATES = ("granted", "denied", "withdrawn")
CONSENT_EVENT = "consent"


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One decision to record."""

    subject_key: str
    purpose: str
    state: str
    source: str
    at: float


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A stored decision (current or historical)."""

    purpose: str
    state: str
    source: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        from attune.events.timestamps import iso

        return {"purpose": self.purpose, "state": self.state, "source": self.source, "at": iso(self.at)}


def parse_purposes(body: Any, purposes: Iterable[str], field: str = "purposes") -> dict[str, str]:
    """Validate ``{"purpose": "state"}``; :class:`ValidationFailed` names every bad entry."""
    if not isinstance(body, Mapping) or not body:
        raise ValidationFailed(f"{field} must be a non-empty object", errors=[f"{field}: must be a non-empty object"])
    known = set(purposes)
    errors = []
    for name, state in body.items():
        if name not in known:
            errors.append(f"{field}.{name}: unknown purpose; use {', '.join(sorted(known))}")
        elif state not in STATES:
            errors.append(f"{field}.{name}: state must be one of {', '.join(STATES)}")
    if errors:
        raise ValidationFailed("invalid consent", errors=errors)
    return dict(body)


def consent_changes(
    event: Event, keys: SubjectKeys, purposes: Iterable[str], subject: str | None = None
) -> list[ConsentChange]:
    """The decisions a ``consent`` event carries (pure; :class:`ValidationFailed` when malformed).

    The event's ``properties`` hold ``{"purposes": {...}, "source": "..."}``; the decisions apply
    to ``subject`` when given (ingestion passes the key it stores the event under), else to its
    user id, else its anonymous id, at the event's timestamp.
    """
    if event.type != CONSENT_EVENT:
        return []
    props = event.properties or {}
    states = parse_purposes(props.get("purposes"), purposes, "properties.purposes")
    source = props.get("source") or event.context.get("source") or "event"
    if not isinstance(source, str):
        raise ValidationFailed("properties.source must be a string", errors=["properties.source: must be a string"])
    if subject is None:
        subject = keys.for_event(event.user_id, event.anonymous_id)
    return [ConsentChange(subject, p, s, source[:200], event.timestamp) for p, s in states.items()]


_PENDING: dict[str, str] = {}
#: The decided states of a subject who decided nothing (shared: never modified).
_NO_DECISIONS: dict[str, str] = {}
class ConsentService:
    """Records decisions and answers ``allows`` quickly."""

    def __init__(self, engine: Engine, settings: PrivacySettings, keys: SubjectKeys) -> None:
        self.engine = engine
        self.settings = settings
        self.keys = keys
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a lookup that started before a change must not cache
        # what it read (it may predate the change).
        self._generation = 0
        #: A counter shared with other processes writing consent (ingest workers): each
        #: invalidation bumps it, and a change seen there clears this process's cache too.
        self.shared: SharedCounter | None = None
        self._shared_seen = 0

    @property
    def purposes(self) -> list[str]:
        """The configured purposes."""
        return list(self.settings.purposes)

    def default(self, purpose: str) -> str:
        """The state of a purpose nobody decided: by its mode (opt-in denies, opt-out grants)."""
        mode = self.settings.purpose_modes.get(purpose, self.settings.consent_mode)
        return "denied" if mode == "opt-in" else "granted"

    # -- writes ------------------------------------------------------------
    def record(self, changes: list[ConsentChange]) -> None:
        """Store decisions (current + history) and clear the cache."""
        if not changes:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(consent_history),
                [{"subject_key": c.subject_key, "purpose": c.purpose, "state": c.state, "source": c.source,
                  "at": c.at} for c in changes],
            )
            latest: dict[tuple[str, str], ConsentChange] = {}
            for c in changes:
                latest[(c.subject_key, c.purpose)] = c
            upsert(
                conn,
                consent_current,
                [{"subject_key": c.subject_key, "purpose": c.purpose, "state": c.state, "source": c.source,
                  "updated_at": c.at} for c in latest.values()],
                ["subject_key", "purpose"],
            )
        self.invalidate()

    def set(self, user_id: str, purposes: Any, source: Any, *, at: float | None = None) -> list[ConsentChange]:
        """Record the decisions of a known user (the API's PUT); return them."""
        states = parse_purposes(purposes, self.purposes)
        if not isinstance(source, str) or not source.strip() or len(source) > 200:
            raise ValidationFailed("source must be a non-empty string", errors=["source: 1 to 200 characters"])
        key = self.keys.user(user_id)
        now = time.time() if at is None else at
        changes = [ConsentChange(key, p, s, source, now) for p, s in states.items()]
        self.record(changes)
        return changes

    @property
    def generation(self) -> int:
        """Counts consent changes seen here (memory-only views compare it to stay current)."""
        self._follow_shared()
        return self._generation

    def invalidate(self) -> None:
        """Forget every cached answer (in every process sharing :attr:`shared`)."""
        with self._lock:
            self._cache.clear()
            self._generation += 1
        if self.shared is not None:
            # _shared_seen stays behind: another process's bump racing this one is then still
            # noticed (at the cost of one more, harmless, clearing).
            self.shared.bump()

    def _follow_shared(self) -> None:
        """Clear the cache when another process changed consent since the last look."""
        shared = self.shared
        if shared is None:
            return
        value = shared.value
        if value != self._shared_seen:
            with self._lock:
                self._cache.clear()
                self._generation += 1
                self._shared_seen = value

    def forget(self, subject_keys: Iterable[str]) -> int:
        """Delete every decision of ``subject_keys`` (erasure); return rows removed."""
        keys = list(subject_keys)
        removed = 0
        with self.engine.begin() as conn:
            for table in (consent_current, consent_history):
                removed += conn.execute(
                    delete(table).where(table.c.subject_key.in_(bindparam("keys", expanding=True))), {"keys": keys}
                ).rowcount
        self.invalidate()
        return removed

    # -- reads -------------------------------------------------------------
    def _states(self, subject_key: str) -> dict[str, str]:
        """Effective decided states of a subject: its canonical person's over its own."""
        return self.states_of([subject_key])[subject_key]

    def states_of(self, subject_keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Decided states of many subjects (canonical person's over own): two queries for all misses.

        Ingestion calls this once per batch, so consent costs two queries per request rather
        than two per event; answers are cached for ``consent_cache_seconds``.
        """
        self._follow_shared()
        now = time.monotonic()
        ttl = self.settings.consent_cache_seconds
        out: dict[str, dict[str, str]] = {}
        missing: list[str] = []
        with self._lock:
            generation = self._generation
            for key in subject_keys:
                if key in out:
                    continue
                cached = self._cache.get(key)
                if cached is not None and now - cached[0] < ttl:
                    out[key] = cached[1]
                else:
                    out[key] = _PENDING
                    missing.append(key)
        if not missing:
            return out
        decided: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            links = dict(select_in(conn, identity_links, ("alias_key", "canonical_key"), "alias_key", missing))
            owners = list(set(missing) | set(links.values()))
            for key, purpose, state in select_in(
                conn, consent_current, ("subject_key", "purpose", "state"), "subject_key", owners
            ):
                decided.setdefault(key, {})[purpose] = state
        # Most subjects decided nothing: they share one empty mapping and one cache entry, so a
        # batch of new people allocates nothing per person here.
        undecided = (now, _NO_DECISIONS)
        entries: dict[str, tuple[float, dict[str, str]]] = {}
        for key in missing:
            own = decided.get(key)
            canonical = links.get(key)
            inherited = decided.get(canonical) if canonical is not None else None
            if own is None and inherited is None:
                entries[key] = undecided
            else:  # the canonical person's decisions override the subject's own
                entries[key] = (now, {**(own or {}), **(inherited or {})})
            out[key] = entries[key][1]
        with self._lock:
            if generation == self._generation:
                if len(self._cache) + len(entries) > 100_000:
                    self._cache.clear()
                self._cache.update(entries)
        return out

    def batch_decisions(self, states: dict[str, dict[str, str]], deciders: Iterable[str]) -> BatchDecisions:
        """Decisions of one ingest batch's consent events (see :class:`BatchDecisions`)."""
        return BatchDecisions(self, states, deciders)

    def state(self, subject_key: str, purpose: str) -> str:
        """The effective state (a decision, or the default) of ``purpose`` for ``subject_key``."""
        return self._states(subject_key).get(purpose) or self.default(purpose)

    def allows(self, subject_key: str, purpose: str) -> bool:
        """Whether ``subject_key`` may be processed for ``purpose``."""
        return self.state(subject_key, purpose) == "granted"

    def allows_user(self, user_id: str, purpose: str) -> bool:
        """:meth:`allows` for a raw user id (serving paths)."""
        return self.allows(self.keys.user(user_id), purpose)

    def current(self, subject_key: str) -> dict[str, dict[str, Any]]:
        """Every purpose's effective state, with source and time when decided."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(consent_current).where(consent_current.c.subject_key == subject_key)).mappings()
            decided = {r["purpose"]: r for r in rows}
        out = {}
        effective = self._states(subject_key)
        for purpose in self.purposes:
            row = decided.get(purpose)
            state = effective.get(purpose) or self.default(purpose)
            from attune.events.timestamps import iso

            out[purpose] = (
                {"state": state, "source": row["source"], "at": iso(row["updated_at"])}
                if row is not None and row["state"] == state
                else {"state": state, "source": "default" if purpose not in effective else "linked", "at": None}
            )
        return out

    def history(self, subject_keys: Iterable[str]) -> list[dict[str, Any]]:
        """Every decision of ``subject_keys``, oldest first."""
        keys = list(subject_keys)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consent_history)
                .where(consent_history.c.subject_key.in_(bindparam("keys", expanding=True)))
                .order_by(consent_history.c.seq),
                {"keys": keys},
            ).mappings().all()
        return [
            {**ConsentRecord(r["purpose"], r["state"], r["source"], r["at"]).to_dict(),
             "subject": self.keys.display_id(r["subject_key"]), "anonymous": not self.keys.is_user(r["subject_key"])}
            for r in rows
        ]


class BatchDecisions:
    """The decisions of one ingest batch's consent events: each takes effect for the rest of the
    batch at once (in ``states``, which it updates in place), and all are recorded together.

    ``states`` are the batch's subjects' decided states as :meth:`ConsentService.states_of`
    gave them. A subject's states are its own decisions overridden by its canonical person's,
    so a decision of subject S changes the states of S and of the subjects whose canonical
    person is S, and of nobody else. Their own decisions and links are read once, up front,
    for every subject that decides in the batch (``deciders``); after each decision the
    states of S and its linked subjects are resolved again from them in memory, exactly as
    :meth:`ConsentService.states_of` would after recording that decision. :meth:`record`
    writes them all in one transaction, in order (history rows keep that order).
    """

    def __init__(self, service: ConsentService, states: dict[str, dict[str, str]], deciders: Iterable[str]) -> None:
        self.service = service
        self.states = states
        self.changes: list[ConsentChange] = []
        deciders = list(set(deciders))
        columns = ("alias_key", "canonical_key")
        with service.engine.connect() as conn:
            #: Subject -> its canonical person, for the deciders and the batch's subjects linked to one.
            self._canonical = dict(select_in(conn, identity_links, columns, "alias_key", deciders))
            #: Decider -> the batch's subjects linked to it (it is their canonical person).
            self._linked: dict[str, list[str]] = {}
            for alias, canonical in select_in(conn, identity_links, columns, "canonical_key", deciders):
                if alias in states:
                    self._canonical[alias] = canonical
                    self._linked.setdefault(canonical, []).append(alias)
            owners = set(deciders) | set(self._canonical) | set(self._canonical.values())
            #: Subject -> its own decided states (as consent_current holds them, then as decided here).
            self._own: dict[str, dict[str, str]] = {}
            for key, purpose, state in select_in(
                conn, consent_current, ("subject_key", "purpose", "state"), "subject_key", list(owners)
            ):
                self._own.setdefault(key, {})[purpose] = state

    def decide(self, subject: str, changes: list[ConsentChange]) -> None:
        """Apply ``changes`` (one consent event's, of ``subject``) for the rest of the batch."""
        own = self._own.setdefault(subject, {})
        for change in changes:
            own[change.purpose] = change.state
        self.changes.extend(changes)
        for key in (subject, *self._linked.get(subject, ())):
            if key in self.states:
                self.states[key] = self._resolved(key)

    def _resolved(self, key: str) -> dict[str, str]:
        canonical = self._canonical.get(key)
        merged = {**self._own.get(key, {}), **(self._own.get(canonical, {}) if canonical is not None else {})}
        return merged or _NO_DECISIONS

    def record(self) -> None:
        """Store every decision made (one transaction) and clear the service's cache."""
        self.service.record(self.changes)
