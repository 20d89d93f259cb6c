"""The segment engine: who holds which segment, kept current as events arrive and time passes.

State lives in memory (``subject key -> memberships`` and ``segment -> members``), loaded
from the store at start, so ``GET /v1/users/{id}/segments`` never touches the database.

How memberships change:

- **Events.** The features consumer tells the engine whom a batch touched
  (:meth:`on_change`, its listener); the engine re-evaluates those people at once, in the
  consumer lane, right after their features were updated. The ``segments`` consumer, next in
  the same lane, makes the changes durable (:meth:`flush`) and re-evaluates anyone of its
  batch the listener did not name (after a restart the features may be ahead of it).
- **Time.** A :class:`~attune.segments.scheduler.LapseScheduler` re-evaluates a person at the
  instant one of their windows next changes (``FeatureStore.next_expiry``), with no event.
- **Definitions.** Creating, changing or deleting a segment re-evaluates everyone
  (:meth:`reevaluate`) or removes its members.
- **Bulk.** :meth:`evaluate_all` recomputes every membership from the offline features with
  the vectorized evaluator (:mod:`attune.segments.bulk`), with the same semantics. The
  difference with memory is taken column-wise (numpy); new memberships share one object per
  segment and confidence, and a segment with many changes is stored as one compressed
  snapshot (:mod:`attune.segments.store`). Only real changes reach webhooks.
- **Replays.** After :meth:`reset` with ``replay_until`` webhooks hear nothing until the replay
  passes the old head; then only the memberships that differ are announced (:meth:`replayed`).
- **Other processes.** A process that does not run the consumers (the API beside a worker)
  calls :meth:`refresh` (or :meth:`follow`): new history rows are applied, a moved change
  generation (snapshot, reset, definition change) reloads everything.

Evaluating a person: every segment in dependency order (a ``segment("x")`` reference reads
the confidence with which ``x`` *matched*, before exclusive groups are applied), rule segments
match with confidence 1.0 and learnt segments with their own confidence; every segment only
matches people for whom ``allows(key, "personalization")`` holds (segments are profile-based),
and a segment with a ``purpose`` (``marketing``) needs ``allows(key, purpose)`` too; then :func:`resolve_exclusive` keeps the highest-priority match of every exclusive group.

Consent is also checked when memberships are read (:meth:`segments_of`, :meth:`members`), from
memory (``allows_many.in_memory``, see :func:`consent_hooks`): a withdrawal hides the person's
memberships on the very next request, before any re-evaluation removes them.

Changes are applied to memory first (visible at once) and appended to a journal that
:meth:`flush` writes in order, with their history, hourly sizes and webhook outbox rows, in one
transaction. Evaluation is a pure function of the features, so re-evaluating after a crash
converges to the same state; a lost journal is recovered by the consumer's replay.

Locks: ``_write`` serializes evaluations (memory and journal; never held while waiting on the
database, because the lane calls :meth:`on_change` while its own transaction holds SQLite's
write lock); ``_persist`` orders journal writes; ``_state`` guards the member dictionaries
against readers iterating them.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, select

from attune.errors import NotFound, ValidationFailed
from attune.features.refs import FeatureRef
from attune.profiles.identity import SubjectKeys
from attune.segments.membership import BulkChange, Change, Membership, Reason
from attune.segments.scheduler import LapseScheduler
from attune.segments.store import SegmentStore, StoredDefinition
from attune.settings import SegmentSettings
from attune.storage.tables import identity_links, profiles, segment_history

log = logging.getLogger(__name__)

#: The purpose every segment needs: segments are built from a person's profile.
PERSONALIZATION = "personalization"

#: Ref kinds the feature store answers online.
FEATURE_KINDS = frozenset({"count", "sum", "distinct", "feature", "context"})


class FeatureSource(Protocol):
    """What the engine needs of the online feature store (``attune.features``)."""

    def values(self, subject_key: str, refs: Iterable[FeatureRef], now: float) -> dict[FeatureRef, Any]: ...

    def next_expiry(self, subject_key: str, windows: Iterable[float], now: float) -> float | None: ...


def consent_hooks(consent: Any, chunk: int = 20_000) -> tuple[Callable[[str, str], bool], Callable[..., Any]]:
    """``(allows, allows_many)`` for the engine from a consent service (``attune.privacy``).

    ``allows_many(keys, purpose)`` answers a bool array for many people with a few queries per
    ``chunk`` (``consent.states_of``), so a bulk re-evaluation does not ask per person.
    ``allows_many.in_memory(key, purpose)`` answers from an in-memory
    :class:`~attune.privacy.consent_view.ConsentView` per purpose, for reads that must not
    query. A purpose the installation does not configure is allowed by all three.
    """
    import numpy as np

    from attune.privacy.consent_view import ConsentView

    def configured(purpose: str) -> bool:
        return purpose in consent.settings.purposes

    def allows(subject_key: str, purpose: str) -> bool:
        return not configured(purpose) or consent.allows(subject_key, purpose)

    views: dict[str, ConsentView] = {}

    def in_memory(subject_key: str, purpose: str) -> bool:
        view = views.get(purpose)
        if view is None:
            view = views.setdefault(purpose, ConsentView(consent, purpose))
        return view.allows(subject_key)

    def allows_many(keys: Any, purpose: str) -> Any:
        keys = list(keys)
        if not configured(purpose):
            return np.ones(len(keys), dtype=bool)
        default = consent.default(purpose)
        out = np.zeros(len(keys), dtype=bool)
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            states = consent.states_of(part)
            out[start : start + len(part)] = [(states[k].get(purpose) or default) == "granted" for k in part]
        return out

    allows_many.pairs_with = allows  # type: ignore[attr-defined]
    allows_many.in_memory = in_memory  # type: ignore[attr-defined]
    return allows, allows_many


def allow_all(subject_key: str, purpose: str) -> bool:
    """The default consent hook: every purpose allowed (the privacy package supplies the real one)."""
    return True


@dataclass
class _Defs:
    """The current definitions, with what evaluating them needs, computed once per change."""

    by_name: dict[str, Any] = field(default_factory=dict)  # name -> SegmentDefinition
    stored: dict[str, StoredDefinition] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    feature_refs: tuple[FeatureRef, ...] = ()
    trait_refs: tuple[FeatureRef, ...] = ()
    windows: tuple[float, ...] = ()
    #: Constants rules compare ``recency_days`` with: membership can flip when recency crosses one.
    recency: tuple[float, ...] = ()
    exclusive: bool = False


class SegmentEngine:
    """Definitions, in-memory memberships and everything that changes them."""

    def __init__(
        self,
        db: Engine,
        features: FeatureSource | None,
        *,
        subject_keys: SubjectKeys | None = None,
        settings: SegmentSettings | None = None,
        catalog: Any = None,
        clock: Callable[[], float] = time.time,
        allows: Callable[[str, str], bool] = allow_all,
        offline: Callable[..., Any] | None = None,
        webhooks: Any = None,
    ) -> None:
        self.db = db
        self.store = SegmentStore(db)
        self.features = features
        self.keys = subject_keys or SubjectKeys()
        self.settings = settings or SegmentSettings()
        if catalog is None:
            from attune.features.catalog import FEATURE_CATALOG

            catalog = FEATURE_CATALOG
        self.catalog = catalog
        self.clock = clock
        #: Consent hook ``allows(subject_key, purpose)``; the privacy package replaces it
        #: (:func:`consent_hooks`), with ``allows_many(keys, purpose) -> bool array`` for bulk.
        self.allows = allows
        self.allows_many: Callable[..., Any] | None = None
        #: ``offline(refs, as_of) -> OfflineFeatures`` for :meth:`evaluate_all`.
        self.offline = offline
        self.webhooks = webhooks
        self.scheduler = LapseScheduler(self._on_lapse, clock=clock)
        self._defs = _Defs()
        self._by_subject: dict[str, tuple[Membership, ...]] = {}
        self._members: dict[str, dict[str, Membership]] = {}
        #: Raw learnt confidences (before exclusive groups): segment -> key -> confidence.
        self._learnt: dict[str, dict[str, float]] = {}
        self._journal: list[Change | BulkChange] = []
        #: ``(generation, history seq)`` of the store when memory was last brought up to date.
        self._marks = (0, 0)
        self._follower: threading.Thread | None = None
        self._following = threading.Event()
        #: During a replay: ``(log head at the reset, memberships before it by key)``.
        self._replay: tuple[int, dict[str, dict[str, float]]] | None = None
        self._noted: set[str] = set()
        #: alias key -> canonical key (identity stitching), so reads resolve ids without the database.
        self._aliases: dict[str, str] = {}
        self._write = threading.RLock()
        self._persist = threading.Lock()
        self._state = threading.Lock()
        self.loaded = False

    # -- lifecycle --------------------------------------------------------------------
    def load(self) -> None:
        """Read definitions and memberships from the store into memory."""
        with self._write, _no_gc():
            self._set_definitions(self.store.definitions())
            marks = self.store.marks()
            members: dict[str, dict[str, Membership]] = {name: {} for name in self._defs.by_name}
            for segment, keys, confidences, since in self.store.snapshots():
                members[segment] = _shared_memberships(segment, keys, confidences, since)
            for segment, key, confidence, since in self.store.memberships():
                held = members.setdefault(segment, {})
                if confidence > 0:
                    held[key] = Membership(segment, confidence, since)
                else:  # left after the segment's snapshot was taken
                    held.pop(key, None)
            by_subject: dict[str, tuple[Membership, ...]] = {}
            for segment in sorted(members):  # by name: each person's tuple comes out sorted
                held = members[segment]
                # key -> previous tuple + (membership,), in C loops (no Python frame per member).
                grown = map(tuple.__add__, map(by_subject.get, held.keys(), repeat(())), zip(held.values()))
                by_subject.update(zip(held.keys(), grown))
            with self._state:
                self._members = members
                self._by_subject = by_subject
                self._marks = marks
                self._learnt = {
                    name: {k: m.confidence for k, m in members.get(name, {}).items()}
                    for name, d in self._defs.by_name.items()
                    if d.kind == "learnt"
                }
            with self.db.connect() as conn:
                self._aliases = dict(
                    conn.execute(select(identity_links.c.alias_key, identity_links.c.canonical_key)).all()
                )
            self.loaded = True

    def start(self) -> None:
        """Start the lapse scheduler and the webhook dispatcher threads."""
        self.scheduler.start()
        if self.webhooks is not None:
            self.webhooks.start()

    def stop(self) -> None:
        """Write what is pending and stop the background threads."""
        if self._follower is not None:
            self._following.set()
            self._follower.join(timeout=5)
            self._follower = None
        self.scheduler.stop()
        try:
            self.flush()
        finally:
            if self.webhooks is not None:
                self.webhooks.stop()

    # -- other processes' changes ---------------------------------------------------------
    def refresh(self) -> int:
        """Catch up with memberships another process changed (an API process beside a worker).

        Cheap when nothing changed: one query of the change generation and the last history
        seq. New history rows are applied in order; a moved generation (a snapshot, a reset,
        a definition change) reloads everything. Returns how many rows were applied (-1: a
        reload). Only for processes that do not run the consumers themselves: there memory is
        ahead of the store and must not be rolled back to it.
        """
        marks = self.store.marks()
        if marks == self._marks:
            return 0
        if marks[0] != self._marks[0] or marks[1] < self._marks[1]:
            self.load()
            return -1
        rows = self.store.history_since(self._marks[1])
        touched: set[str] = set()
        with self._write, self._state:
            for _, segment, key, change, confidence, at in rows:
                if segment not in self._defs.by_name:
                    continue
                members = self._members.setdefault(segment, {})
                previous = members.get(key)
                if change == "exit":
                    members.pop(key, None)
                else:
                    since = previous.since if previous is not None and change == "update" else at
                    members[key] = Membership(segment, float(confidence), since)
                touched.add(key)
            names = sorted(self._members)
            for key in touched:
                held = tuple(m for name in names if (m := self._members[name].get(key)) is not None)
                if held:
                    self._by_subject[key] = held
                else:
                    self._by_subject.pop(key, None)
            self._marks = (marks[0], rows[-1][0] if rows else marks[1])
        return len(rows)

    def follow(self, interval: float | None = None) -> None:
        """Call :meth:`refresh` every ``interval`` seconds (default ``refresh_seconds``) in a thread."""
        if self._follower is not None:
            return
        every = self.settings.refresh_seconds if interval is None else interval
        stop = self._following = threading.Event()

        def run() -> None:
            while not stop.wait(every):
                try:
                    self.refresh()
                except Exception:
                    log.exception("segment membership refresh failed")

        self._follower = threading.Thread(target=run, name="segment-refresh", daemon=True)
        self._follower.start()

    # -- reads (memory only) -------------------------------------------------------------
    def segments_of(self, subject_key: str) -> list[Membership]:
        """The memberships of canonical ``subject_key``, by segment name (no database access).

        Memberships whose purposes the person no longer allows are left out (see :meth:`permits`).
        """
        held = self._by_subject.get(subject_key, ())
        check = self._read_consent()
        if check is None or not held:
            return list(held)
        return [m for m in held if self._permits(check, subject_key, m.name)]

    def resolve_user(self, user_id: str) -> str:
        """The canonical subject key of a user id (or of an anonymous id), from memory."""
        key = self.keys.user(user_id)
        if key in self._by_subject:
            return key
        canonical = self._aliases.get(key)
        if canonical is not None:
            return canonical
        anon = self.keys.anon(user_id)
        if anon in self._by_subject:
            return anon
        return self._aliases.get(anon, key)

    def members(self, name: str, offset: int = 0, limit: int | None = None) -> list[tuple[str, Membership]]:
        """``(subject key, membership)`` of segment ``name``, a page at a time.

        Members who no longer allow the segment's purposes are skipped (offsets count the
        members shown), so a withdrawal counts before re-evaluation removes them.
        """
        check = self._read_consent()
        with self._state:
            members = self._members.get(name)
            if members is None:
                if name not in self._defs.by_name:
                    raise NotFound(f"no segment named {name!r}")
                return []
            stop = None if limit is None else offset + limit
            items: Iterable[tuple[str, Membership]] = members.items()
            if check is not None:
                items = (item for item in items if self._permits(check, item[0], name))
            return list(islice(items, offset, stop))

    def permits(self, subject_key: str, name: str) -> bool:
        """Whether ``subject_key`` allows what segment ``name`` needs now (personalization and its
        purpose), answered from memory; True when no in-memory consent check is installed."""
        check = self._read_consent()
        return check is None or self._permits(check, subject_key, name)

    def _permits(self, check: Callable[[str, str], bool], key: str, name: str) -> bool:
        if not check(key, PERSONALIZATION):
            return False
        definition = self._defs.by_name.get(name)
        purpose = None if definition is None else definition.purpose
        return purpose is None or purpose == PERSONALIZATION or check(key, purpose)

    def _read_consent(self) -> Callable[[str, str], bool] | None:
        """The memory-only consent check paired with the current hooks, if any."""
        many = self._bulk_consent()
        return None if many is None else getattr(many, "in_memory", None)

    def size(self, name: str) -> int:
        """How many people hold segment ``name`` now."""
        return len(self._members.get(name, ()))

    def sizes(self) -> dict[str, int]:
        """Current size of every segment."""
        return {name: len(self._members.get(name, ())) for name in self._defs.by_name}

    def definitions(self) -> dict[str, Any]:
        """The current definitions (``SegmentDefinition``) by name."""
        return dict(self._defs.by_name)

    def stored(self, name: str | None = None) -> Any:
        """The stored definition ``name`` (with version and times), or all of them by name."""
        if name is None:
            return dict(self._defs.stored)
        try:
            return self._defs.stored[name]
        except KeyError:
            raise NotFound(f"no segment named {name!r}") from None

    # -- definitions ----------------------------------------------------------------------
    def check(self, specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Parse and validate ``specs`` against the current set; the full resulting set by name.

        Raises ``RuleError`` (422) naming the segment, the field and the position of a fault,
        a cycle or a reference to an unknown segment.
        """
        from attune.segments.definitions import dependency_order, parse_definition
        from attune.segments.rules import RuleError, validate_rule

        merged = dict(self._defs.by_name)
        for name, spec in specs.items():
            if isinstance(spec, Mapping) and str(spec.get("kind", "rule")) == "learnt":
                raise ValidationFailed(
                    f"segment {name!r}: learnt segments are made by `attune segments learn`, not defined by hand",
                    errors=[f"{name}.kind: must be 'rule'"],
                )
            definition = parse_definition(name, spec)
            if definition.rule is not None:
                try:
                    validate_rule(definition.rule, self.catalog)
                except RuleError as error:
                    raise error.within(f"segment {name!r}, rule: ") from None
            merged[name] = definition
        dependency_order(merged)
        return merged

    def apply_definitions(
        self,
        specs: Mapping[str, Mapping[str, Any]],
        *,
        reevaluate: bool = True,
    ) -> dict[str, int]:
        """Create or replace definitions (validated as a set); return each one's version.

        With ``reevaluate`` every known person is re-evaluated against the new set at once.
        """
        merged = self.check(specs)
        normalized = {name: _spec_of(merged[name]) for name in specs}
        now = self.clock()
        with self._write:
            with self.db.begin() as conn:
                versions = self.store.put_definitions(conn, normalized, now)
            self._set_definitions(self.store.definitions())
        if reevaluate:
            self.reevaluate()
        return versions

    def delete_definition(self, name: str) -> None:
        """Remove segment ``name`` and every membership of it (recorded as exits)."""
        from attune.segments.definitions import dependency_order

        if name not in self._defs.by_name:
            raise NotFound(f"no segment named {name!r}")
        users = sorted(
            n for n, d in self._defs.by_name.items() if d.rule is not None and name in d.rule.segments
        )
        if users:
            raise ValidationFailed(
                f"segment {name!r} is used by {', '.join(users)}: change or delete those first",
                errors=[f"{u}.rule: refers to segment({name!r})" for u in users],
            )
        with self._write:
            now = self.clock()
            rest = {n: d for n, d in self._defs.by_name.items() if n != name}
            dependency_order(rest)
            changes = self._drop_segment(name, now, "definition")
            self._journal.extend(changes)
            self.flush()
            with self.db.begin() as conn:
                self.store.delete_definition(conn, name)
            self._set_definitions(self.store.definitions())
            with self._state:
                self._members.pop(name, None)
                self._learnt.pop(name, None)

    def _set_definitions(self, stored: list[StoredDefinition]) -> None:
        from attune.segments.definitions import dependency_order, parse_definition

        by_name: dict[str, Any] = {e.name: parse_definition(e.name, _rule_spec(e.spec)) for e in stored}
        order = dependency_order(by_name) if by_name else []
        refs = {ref for d in by_name.values() if d.rule is not None for ref in d.rule.refs}
        feature_refs = tuple(sorted((r for r in refs if r.kind in FEATURE_KINDS), key=_ref_key))
        trait_refs = tuple(sorted((r for r in refs if r.kind == "trait"), key=_ref_key))
        windows = set()
        for ref in feature_refs:
            if ref.window_seconds is not None:
                windows.add(ref.window_seconds)
            elif ref.kind == "feature" and ref.name != "recency_days":
                windows.add(self._activity_window())  # named features default to the activity window
        self._defs = _Defs(
            by_name=by_name,
            stored={e.name: e for e in stored},
            order=order,
            feature_refs=feature_refs,
            trait_refs=trait_refs,
            windows=tuple(sorted(windows)),
            recency=_recency_constants(d.rule for d in by_name.values() if d.rule is not None),
            exclusive=any(d.group for d in by_name.values()),
        )
        with self._state:
            for name in by_name:
                self._members.setdefault(name, {})

    # -- evaluation ------------------------------------------------------------------------
    def on_change(self, subject_keys: Iterable[str], now: float) -> None:
        """Listener of the features consumer: re-evaluate these people now (memory, journal)."""
        keys = [k for k in subject_keys]
        if not keys:
            return
        with self._write:
            self._noted.update(keys)
            self._evaluate(keys, now, "event")

    def evaluate_keys(
        self, subject_keys: Iterable[str], now: float | None = None, reason: Reason = "event"
    ) -> list[Change]:
        """Re-evaluate these people at ``now`` (default: the clock); return the changes (unflushed)."""
        with self._write:
            return self._evaluate(list(subject_keys), self.clock() if now is None else now, reason)

    def handle_batch(
        self, touched: Iterable[str], links: Mapping[str, str], now: float | None = None
    ) -> None:
        """The segments consumer's step: merges, people the listener missed, then :meth:`flush`.

        ``touched`` are the subject keys the batch's events name; ``links`` maps those of them
        that are aliases to their canonical subject (identity stitching).
        """
        now = self.clock() if now is None else now
        self._aliases.update(links)
        with self._write:
            merged = [k for k in touched if links.get(k, k) != k and k in self._by_subject]
            if merged:
                self._journal.extend(self._forget(merged, now, "merge"))
            canonical = {links.get(k, k) for k in touched}
            missed = sorted(k for k in canonical if k not in self._noted)
            self._noted.clear()
            if missed:
                self._evaluate(missed, now, "event")
        self.flush()

    def reevaluate(
        self,
        keys: Iterable[str] | None = None,
        *,
        now: float | None = None,
        chunk: int = 2000,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Re-evaluate ``keys`` (default: every profile and every current member) online at
        ``now`` (default: the clock); flushed."""
        if keys is None:
            with self.db.connect() as conn:
                everyone = set(conn.execute(select(profiles.c.user_key)).scalars())
            everyone.update(self._by_subject)
            keys = sorted(everyone)
        else:
            keys = list(keys)
        now = self.clock() if now is None else now
        done = 0
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            with self._write:
                self._evaluate(part, now, "definition")
            self.flush()
            done += len(part)
            if progress is not None:
                progress(done, len(keys))
        return done

    def evaluate_all(
        self,
        progress: Callable[[str, int, int], None] | None = None,
        *,
        as_of: float | None = None,
        offline: Any = None,
    ) -> dict[str, int]:
        """Recompute every membership from the offline features (vectorized); return the changes.

        ``offline`` is an ``OfflineFeatures`` (``subject_keys`` array, ``values`` columns) for the
        refs of the current definitions; by default ``self.offline(refs, as_of)`` computes it.
        ``progress(stage, done, total)`` is told about each stage. Returns
        ``{"entered", "exited", "updated", "people"}``. Meant for the CLI with the same
        semantics as the real-time path; changes by events during the run may be overwritten
        by values computed a moment earlier, and are corrected by the next event.
        """
        import numpy as np

        from attune.segments.bulk import match_columns, resolve_columns

        def tell(stage: str, done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)

        now = self.clock() if as_of is None else as_of
        defs = self._defs
        if offline is None:
            if self.offline is None:
                raise ValidationFailed("no offline feature source is configured for re-evaluation")
            tell("features", 0, 1)
            offline = self.offline(list(defs.feature_refs), now)
            tell("features", 1, 1)
        tell("prepare", 0, 1)
        keys = np.asarray(offline.subject_keys, dtype=object)
        n = len(keys)
        index = dict(zip(keys.tolist(), range(n)))
        columns: dict[FeatureRef, Any] = {r: offline.values[r] for r in defs.feature_refs}
        if defs.trait_refs:
            tell("traits", 0, 1)
            columns.update(self._trait_columns(index, defs.trait_refs))
            tell("traits", 1, 1)
        learnt: dict[str, Any] = {}
        for name, confidences in self._learnt.items():
            column = np.zeros(n)
            for key, confidence in confidences.items():
                i = index.get(key)
                if i is not None:
                    column[i] = confidence
            learnt[name] = column
        purposes = {d.purpose for d in defs.by_name.values() if d.purpose is not None}
        purposes.add(PERSONALIZATION)
        if self.allows is allow_all:
            allowed = {p: np.ones(n, dtype=bool) for p in purposes}
        elif self._bulk_consent() is not None:
            allowed = {p: np.asarray(self._bulk_consent()(keys.tolist(), p), dtype=bool) for p in purposes}
        else:
            allowed = {
                p: np.fromiter((self.allows(k, p) for k in keys.tolist()), dtype=bool, count=n)
                for p in purposes
            }
        tell("prepare", 1, 1)
        tell("rules", 0, len(defs.order))
        matched = match_columns(defs.order, defs.by_name, columns, n, learnt=learnt, allowed=allowed)
        # Every segment needs personalization: people without it match nothing, as online.
        personal = allowed[PERSONALIZATION]
        matched = {name: np.where(personal, column, 0.0) for name, column in matched.items()}
        held = resolve_columns(matched, defs.by_name)
        tell("rules", len(defs.order), len(defs.order))
        tell("memberships", 0, len(defs.order))
        with self._write, _no_gc():
            bulks = self._apply_columns(held, keys, index, now)
            self._journal.extend(bulks)
        tell("memberships", len(defs.order), len(defs.order))
        tell("store", 0, 1)
        self.flush()
        tell("store", 1, 1)
        totals = {
            "entered": sum(len(b.entered[0]) for b in bulks),
            "exited": sum(len(b.exited[0]) for b in bulks),
            "updated": sum(len(b.updated[0]) for b in bulks),
            "people": n,
        }
        if defs.windows or defs.recency:
            with self._write:
                self._schedule([k for k in keys if self._is_person(k)], self.clock())
        return totals

    def _apply_columns(
        self,
        held: Mapping[str, Any],
        keys: Any,
        index: dict[str, int],
        now: float,
        reason: Reason = "evaluate",
    ) -> list[BulkChange]:
        """Make memory hold exactly ``held`` (confidence columns over ``keys``); one
        :class:`BulkChange` per changed segment (caller holds ``_write``).

        Vectorized: per segment, the held column is compared with the old one (built from
        the members dictionary), entries share one :class:`Membership` object per confidence,
        and the per-person tuples of people who held nothing before are built once per
        combination of segments. Members the offline features do not know leave.
        """
        import numpy as np

        n = len(keys)
        names = sorted(held)
        bulks: list[BulkChange] = []
        entered_objects: dict[str, dict[float, Membership]] = {}
        changed = np.zeros(n, dtype=bool)
        had = np.zeros(n, dtype=bool)
        outside_all: set[str] = set()
        threshold = self.settings.bulk_threshold
        with self._state:
            for name in names:
                members = self._members.setdefault(name, {})
                new = np.asarray(held[name], dtype=float)
                old = np.zeros(n)
                if members:
                    # C-level maps: no Python frame per member (millions of them).
                    positions = np.fromiter(
                        map(index.get, members, repeat(-1)), dtype=np.int64, count=len(members)
                    )
                    confidences = np.fromiter(
                        map(_confidence, members.values()), dtype=float, count=len(members)
                    )
                    inside = positions >= 0
                    old[positions[inside]] = confidences[inside]
                    outside = [k for k, p in zip(members, positions.tolist(), strict=True) if p < 0]
                else:
                    outside = []
                had |= old > 0
                size_before = len(members)
                enter = np.flatnonzero((old <= 0) & (new > 0))
                leave = np.flatnonzero((old > 0) & (new <= 0))
                moved = np.flatnonzero((old > 0) & (new > 0) & (old != new))
                if not (len(enter) or len(leave) or len(moved) or outside):
                    continue
                changed[enter] = changed[leave] = changed[moved] = True
                outside_all.update(outside)
                exit_keys = keys[leave].tolist() + outside
                exit_conf = np.concatenate([old[leave], [members[k].confidence for k in outside]])
                for key in exit_keys:
                    del members[key]
                enter_keys = keys[enter].tolist()
                shared = entered_objects.setdefault(name, {})
                values = new[enter]
                distinct, inverse = np.unique(values, return_inverse=True)
                objects = np.empty(len(distinct), dtype=object)
                for i, c in enumerate(distinct.tolist()):
                    objects[i] = shared[c] = Membership(name, c, now)
                members.update(zip(enter_keys, objects[inverse].tolist(), strict=True))
                move_keys = keys[moved].tolist()
                move_since = np.fromiter(
                    (members[k].since for k in move_keys), dtype=float, count=len(move_keys)
                )
                for key, c, since in zip(move_keys, new[moved].tolist(), move_since.tolist(), strict=True):
                    members[key] = Membership(name, c, since)
                snapshot = None
                if len(enter) + len(exit_keys) + len(moved) > threshold:
                    snapshot = (
                        list(members),
                        np.fromiter(
                            (m.confidence for m in members.values()), dtype=float, count=len(members)
                        ),
                        np.fromiter((m.since for m in members.values()), dtype=float, count=len(members)),
                    )
                bulks.append(
                    BulkChange(
                        name,
                        (enter_keys, values),
                        (exit_keys, exit_conf),
                        (move_keys, new[moved]),
                        now,
                        reason,
                        size_before,
                        snapshot,
                        move_since,
                    )
                )
            self._retuple(names, held, keys, changed, had, entered_objects, bulks)
        return bulks

    def _retuple(
        self,
        names: list[str],
        held: Mapping[str, Any],
        keys: Any,
        changed: Any,
        had: Any,
        entered: dict[str, dict[float, Membership]],
        bulks: list[BulkChange],
    ) -> None:
        """Rebuild ``_by_subject`` for the people whose memberships changed (holds ``_state``)."""
        import numpy as np

        by_subject = self._by_subject
        fresh = np.zeros(len(keys), dtype=bool)
        if len(names) <= 62:
            # People who held nothing and now hold only confidence-1 memberships: their tuple
            # depends only on which segments they hold, so it is built once per combination.
            # (and hold nothing else either: a subset of segments may be applied)
            fresh = changed & ~had
            if by_subject:
                fresh &= ~np.fromiter(
                    map(by_subject.__contains__, keys.tolist()), dtype=bool, count=len(keys)
                )
            mask = np.zeros(len(keys), dtype=np.int64)
            for j, name in enumerate(names):
                column = np.asarray(held[name], dtype=float)
                fresh &= (column == 0) | (column == 1.0)
                mask |= (column > 0).astype(np.int64) << j
            rows = np.flatnonzero(fresh)
            combos, inverse = np.unique(mask[rows], return_inverse=True)
            tuples = np.empty(len(combos), dtype=object)
            for i, combo in enumerate(combos.tolist()):
                tuples[i] = tuple(entered[name][1.0] for j, name in enumerate(names) if combo >> j & 1)
            by_subject.update(zip(keys[rows].tolist(), tuples[inverse].tolist(), strict=True))
        # Everyone else who changed: their tuple, minus the segments that changed for them,
        # plus what they hold of those now (work in proportion to the changes).
        if not (changed & ~fresh).any() and not any(len(b.exited[0]) for b in bulks):
            return  # only fresh people changed (they never exit): all done above
        skip = set(keys[fresh].tolist()) if fresh.any() else set()
        touched: dict[str, list[str]] = {}
        for bulk in bulks:
            for group in (bulk.entered[0], bulk.exited[0], bulk.updated[0]):
                for key in group:
                    if key not in skip:
                        touched.setdefault(key, []).append(bulk.segment)
        members = self._members
        for key, changed_names in touched.items():
            kept = [m for m in by_subject.get(key, ()) if m.name not in changed_names]
            kept += [m for n in changed_names if (m := members[n].get(key)) is not None]
            if kept:
                by_subject[key] = tuple(sorted(kept, key=_by_name))
            else:
                by_subject.pop(key, None)

    def _trait_columns(self, index: dict[str, int], refs: tuple[FeatureRef, ...]) -> dict[FeatureRef, Any]:
        """One object column per trait ref (None where a person lacks the trait)."""
        import numpy as np

        columns = {ref: np.full(len(index), None, dtype=object) for ref in refs}
        with self.db.connect() as conn:
            result = conn.execution_options(yield_per=20_000).execute(
                select(profiles.c.user_key, profiles.c.traits)
            )
            for key, traits in result:
                i = index.get(key)
                if i is None or not traits:
                    continue
                for ref in refs:
                    record = traits.get(ref.name)
                    if record is not None:
                        columns[ref][i] = record.get("value")
        return columns

    def matches(self, subject_key: str, now: float | None = None) -> dict[str, float]:
        """What ``subject_key`` would hold now (after exclusive groups), without changing anything."""
        now = self.clock() if now is None else now
        return self._held_for([subject_key], now)[subject_key]

    def _held_for(self, keys: list[str], now: float) -> dict[str, dict[str, float]]:
        defs = self._defs
        traits = self._traits(keys) if defs.trait_refs else {}
        held: dict[str, dict[str, float]] = {}
        for key in keys:
            values: dict[FeatureRef, Any] = {}
            if defs.feature_refs and self.features is not None:
                values.update(self.features.values(key, defs.feature_refs, now))
            if defs.trait_refs:
                own = traits.get(key, {})
                for ref in defs.trait_refs:
                    values[ref] = own.get(ref.name)
            held[key] = self._resolve(self._match(key, values))
        return held

    def _match(self, key: str, values: dict[FeatureRef, Any]) -> dict[str, float]:
        from attune.segments.rules import evaluate

        defs = self._defs
        matches: dict[str, float] = {}
        if defs.order and not self.allows(key, PERSONALIZATION):
            return matches  # segments are profile-based: none without personalization consent
        for name in defs.order:
            definition = defs.by_name[name]
            if definition.kind == "learnt":
                confidence = self._learnt.get(name, {}).get(key, 0.0)
            else:
                rule = definition.rule
                for ref_name in rule.segments:
                    values[FeatureRef("segment", name=ref_name)] = matches.get(ref_name, 0.0)
                confidence = 1.0 if evaluate(rule, values) else 0.0
            if confidence > 0 and (definition.purpose is None or self.allows(key, definition.purpose)):
                matches[name] = confidence
        return matches

    def _resolve(self, matches: dict[str, float]) -> dict[str, float]:
        if not self._defs.exclusive or len(matches) < 2:
            return matches
        from attune.segments.definitions import resolve_exclusive

        return resolve_exclusive(matches, self._defs.by_name)

    def _evaluate(self, keys: list[str], now: float, reason: Reason) -> list[Change]:
        """Evaluate ``keys`` and apply the differences (caller holds ``_write``).

        Keys the features do not know (ids merged into someone else, erased people) hold nothing.
        """
        people = [k for k in keys if self._is_person(k)]
        gone = [k for k in keys if not self._is_person(k)]
        held = self._held_for(people, now)
        changes: list[Change] = self._forget(gone, now, "merge" if reason == "event" else reason)
        for key in people:
            changes.extend(self._diff(key, held[key], now, reason))
        self._journal.extend(changes)
        self._schedule(people, now)
        return changes

    def _schedule(self, keys: list[str], now: float) -> None:
        """Schedule each person's next lapse: a window sliding past, or recency crossing a constant."""
        defs = self._defs
        if (not defs.windows and not defs.recency) or self.features is None:
            return
        recency_ref = FeatureRef("feature", name="recency_days")
        for key in keys:
            at = self.features.next_expiry(key, defs.windows, now) if defs.windows else None
            if defs.recency:
                days = self.features.values(key, [recency_ref], now).get(recency_ref)
                if days is not None and days == days:
                    # Crossing c days happens at now + (c - days) days; a hair later so ">" holds too.
                    later = [now + (c - days) * 86400.0 + 1e-3 for c in defs.recency if c >= days]
                    if later:
                        at = min(later) if at is None else min(at, min(later))
            self.scheduler.schedule(key, at)

    def _activity_window(self) -> float:
        definitions = getattr(self.features, "defs", None)
        return float(getattr(definitions, "activity_window", 30 * 86400.0))

    def _is_person(self, key: str) -> bool:
        """Whether ``key`` is someone the features know (an alias merged away is not)."""
        persons = getattr(self.features, "persons", None)
        return True if persons is None else key in persons

    def _diff(self, key: str, new: Mapping[str, float], now: float, reason: Reason) -> list[Change]:
        """Make ``key`` hold exactly ``new``; the changes, applied to memory."""
        old = {m.name: m for m in self._by_subject.get(key, ())}
        changes: list[Change] = []
        if not old and not new:
            return changes
        kept: list[Membership] = []
        with self._state:
            for name, membership in old.items():
                if name not in new:
                    members = self._members.get(name, {})
                    members.pop(key, None)
                    changes.append(
                        Change(name, key, "exit", membership.confidence, now, reason, len(members))
                    )
            for name, confidence in new.items():
                previous = old.get(name)
                members = self._members.setdefault(name, {})
                if previous is None:
                    membership = Membership(name, confidence, now)
                    members[key] = membership
                    changes.append(Change(name, key, "enter", confidence, now, reason, len(members)))
                elif previous.confidence != confidence:
                    membership = Membership(name, confidence, previous.since)
                    members[key] = membership
                    changes.append(Change(name, key, "update", confidence, now, reason, len(members)))
                else:
                    membership = previous
                kept.append(membership)
            if kept:
                self._by_subject[key] = tuple(sorted(kept, key=_by_name))
            else:
                self._by_subject.pop(key, None)
        return changes

    def _forget(self, keys: Iterable[str], now: float, reason: Reason) -> list[Change]:
        changes: list[Change] = []
        for key in keys:
            changes.extend(self._diff(key, {}, now, reason))
            self.scheduler.schedule(key, None)
        return changes

    def _drop_segment(self, name: str, now: float, reason: Reason) -> list[Change]:
        changes: list[Change] = []
        for key in list(self._members.get(name, {})):
            keep = {m.name: m.confidence for m in self._by_subject.get(key, ()) if m.name != name}
            changes.extend(self._diff(key, keep, now, reason))
        return changes

    def _on_lapse(self, keys: list[str], now: float) -> None:
        try:
            with self._write:
                self._evaluate(keys, now, "lapse")
            self.flush()
        except Exception:
            for key in keys:  # try again shortly rather than lose the lapse
                self.scheduler.schedule(key, now + 1.0)
            raise

    def _traits(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        from attune.profiles.traits import plain

        if not keys:
            return {}
        with self.db.connect() as conn:
            rows = conn.execute(
                select(profiles.c.user_key, profiles.c.traits).where(
                    profiles.c.user_key.in_(bindparam("keys", expanding=True))
                ),
                {"keys": keys},
            ).all()
        return {key: plain(traits or {}) for key, traits in rows}

    # -- learnt segments ----------------------------------------------------------------
    def set_learnt(
        self,
        specs: Mapping[str, Mapping[str, Any]],
        assignments: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Store learnt segments (``specs`` by name) and their confidences (segment -> key -> c).

        Learnt segments previously stored but not in ``specs`` are removed. Everyone affected is
        re-evaluated so exclusive groups and references see the new confidences.
        """
        with self._write:
            now = self.clock()
            stale = [n for n, d in self._defs.by_name.items() if d.kind == "learnt" and n not in specs]
            for name in specs:
                existing = self._defs.by_name.get(name)
                if existing is not None and existing.kind != "learnt":
                    raise ValidationFailed(
                        f"segment {name!r} exists as a rule segment; learnt segments need other names"
                    )
            for name in stale:
                self._journal.extend(self._drop_segment(name, now, "learnt"))
            self.flush()
            with self.db.begin() as conn:
                for name in stale:
                    self.store.delete_definition(conn, name)
                self.store.put_definitions(conn, {n: _learnt_spec(n, s) for n, s in specs.items()}, now)
            touched = {k for name in list(specs) + stale for k in self._learnt.get(name, {})}
            with self._state:
                for name in stale:
                    self._learnt.pop(name, None)
                    self._members.pop(name, None)
                for name in specs:
                    self._learnt[name] = {k: float(c) for k, c in assignments.get(name, {}).items() if c > 0}
                    touched.update(self._learnt[name])
            self._set_definitions(self.store.definitions())
            keys = sorted(touched)
            if self._learnt_alone():
                self._set_learnt_columns(keys, now)
        if not self._learnt_alone():
            for start in range(0, len(keys), 5000):
                with self._write:
                    self._evaluate(keys[start : start + 5000], now, "learnt")
                self.flush()
        else:
            self.flush()

    def _bulk_consent(self) -> Callable[..., Any] | None:
        """``allows_many`` when it answers for the current ``allows`` (a hook replaced alone
        must not be contradicted by a stale bulk twin)."""
        many = self.allows_many
        if many is None or getattr(many, "pairs_with", self.allows) != self.allows:
            return None
        return many

    def _learnt_alone(self) -> bool:
        """Whether learnt memberships depend on nothing else: no rule refers to a learnt segment
        and no exclusive group mixes learnt and rule segments. Then they are set column-wise."""
        defs = self._defs.by_name
        learnt = {n for n, d in defs.items() if d.kind == "learnt"}
        if any(d.rule is not None and d.rule.segments & learnt for d in defs.values()):
            return False
        groups = {d.group for n, d in defs.items() if n in learnt and d.group}
        return not any(d.group in groups for n, d in defs.items() if n not in learnt)

    def _set_learnt_columns(self, keys: list[str], now: float) -> None:
        """Hold every learnt segment exactly as its confidences say (gated by consent and
        groups), vectorized over ``keys`` (caller holds ``_write``)."""
        import numpy as np

        from attune.segments.bulk import resolve_columns

        n = len(keys)
        array = np.asarray(keys, dtype=object)
        index = dict(zip(keys, range(n)))
        columns: dict[str, Any] = {}
        allowed: dict[str, Any] = {}

        def allowing(purpose: str) -> Any:  # one consent column per purpose
            if purpose not in allowed:
                if self._bulk_consent() is not None:
                    allowed[purpose] = np.asarray(self._bulk_consent()(keys, purpose), dtype=bool)
                else:
                    allowed[purpose] = np.fromiter(
                        (self.allows(k, purpose) for k in keys), dtype=bool, count=n
                    )
            return allowed[purpose]

        for name, definition in self._defs.by_name.items():
            if definition.kind != "learnt":
                continue
            confidences = self._learnt.get(name, {})
            column = np.zeros(n)
            positions = np.fromiter(
                map(index.__getitem__, confidences), dtype=np.int64, count=len(confidences)
            )
            column[positions] = np.fromiter(confidences.values(), dtype=float, count=len(confidences))
            if self.allows is not allow_all:  # personalization, and the segment's purpose if any
                column = np.where(allowing(PERSONALIZATION), column, 0.0)
                if definition.purpose is not None:
                    column = np.where(allowing(definition.purpose), column, 0.0)
            columns[name] = column
        held = resolve_columns(columns, self._defs.by_name)
        with _no_gc():
            self._journal.extend(self._apply_columns(held, array, index, now, "learnt"))

    def learnt_confidences(self, name: str) -> dict[str, float]:
        """The confidences learnt segment ``name`` was stored with (key -> confidence)."""
        return dict(self._learnt.get(name, {}))

    # -- erasure ------------------------------------------------------------------------
    def erase(self, subject_key: str) -> None:
        """Remove a person from every segment and delete the history rows naming them."""
        self.erase_many([subject_key])

    def erase_many(self, subject_keys: Iterable[str]) -> None:
        """:meth:`erase` for many people at once (one pass over the stored snapshots)."""
        keys = sorted(set(subject_keys))
        if not keys:
            return
        with self._write:
            self._journal.extend(self._forget(keys, self.clock(), "consent"))
            with self._state:
                for learnt in self._learnt.values():
                    for key in keys:
                        learnt.pop(key, None)
        self.flush()
        with self.db.begin() as conn:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                conn.execute(segment_history.delete().where(segment_history.c.user_key.in_(part)))
            # Other processes reload (the bump): the exit rows they would follow are gone.
            self.store.drop_from_snapshots(conn, keys)
            self.store.bump(conn)

    # -- persistence --------------------------------------------------------------------
    def flush(self) -> int:
        """Write the journal (changes not yet stored), in order; return how many were written."""
        with self._persist:
            with self._write:
                pending, self._journal = self._journal, []
                # During a replay nothing is announced until it ends (see :meth:`replayed`).
                urls = () if self._replay is not None else tuple(self.settings.webhook_urls)
            written = self._write_pending(pending, urls)
        if written and urls and self.webhooks is not None:
            self.webhooks.notify()
        return written

    def _write_pending(
        self, pending: list[Change | BulkChange], urls: tuple[str, ...], announce: list[Change] | None = None
    ) -> int:
        """Write ``pending`` (caller holds ``_persist``); on failure it goes back to the journal."""
        if not pending and not announce:
            return 0
        with self._write:
            since = {
                (c.segment, c.user_key): m.since
                for c in pending
                if isinstance(c, Change)
                and c.kind != "exit"
                and (m := self._members.get(c.segment, {}).get(c.user_key)) is not None
            }
        written = 0
        try:
            while written < len(pending):
                if isinstance(pending[written], BulkChange):
                    with self.db.begin() as conn:
                        self.store.apply_bulk(
                            conn, pending[written], urls, self.keys.display_id, self.clock()
                        )
                    written += 1
                    continue
                end = written
                while (
                    end < len(pending) and end - written < 50_000 and not isinstance(pending[end], BulkChange)
                ):
                    end += 1
                with self.db.begin() as conn:
                    self.store.apply(
                        conn,
                        pending[written:end],
                        urls,
                        since=since,
                        display=self.keys.display_id,
                        now=self.clock(),
                    )
                written = end
            if announce:
                with self.db.begin() as conn:
                    self.store.announce(
                        conn, announce, self.settings.webhook_urls, self.keys.display_id, self.clock()
                    )
        except Exception:
            with self._write:
                self._journal = pending[written:] + self._journal  # written again next time
            raise
        return len(pending)

    def replayed(self, offset: int) -> int:
        """Told by the consumer how far it got: at the end of a replay, announce the real changes.

        A replay (:meth:`reset` with ``replay_until``) rebuilds every membership through
        intermediate states; webhooks are told nothing meanwhile. Once the replay has passed
        the log's head as it was at the reset, the memberships before the reset are compared
        with the ones now and only the differences are announced (reason ``replay``).
        Returns how many changes were announced. (A crash during the replay loses the
        memberships before it: the rest of the replay is then announced as it happens.)
        """
        replay = self._replay
        if replay is None or offset < replay[0]:
            return 0
        with self._persist:
            with self._write:
                if self._replay is None:
                    return 0
                pending, self._journal = self._journal, []
                baseline = self._replay[1]
                now = self.clock()
                sizes = self.sizes()
                announce: list[Change] = []
                for key in sorted(baseline.keys() | self._by_subject.keys()):
                    old = baseline.get(key, {})
                    new = {m.name: m.confidence for m in self._by_subject.get(key, ())}
                    for name in sorted(old.keys() - new.keys()):
                        announce.append(
                            Change(name, key, "exit", old[name], now, "replay", sizes.get(name, 0))
                        )
                    for name in sorted(new.keys() - old.keys()):
                        announce.append(
                            Change(name, key, "enter", new[name], now, "replay", sizes.get(name, 0))
                        )
                self._replay = None
            self._write_pending(pending, (), announce)
        if announce and self.webhooks is not None:
            self.webhooks.notify()
        return len(announce)

    def reset(self, conn: Any = None, *, replay_until: int | None = None) -> None:
        """Forget every membership (memory and store; definitions stay): before a replay.

        ``replay_until`` (the log's head) says a replay follows: webhooks hear of its changes
        only when it has passed that offset, and only of real ones (see :meth:`replayed`).
        """
        with self._persist, self._write:
            if replay_until is not None and self.settings.webhook_urls and self._replay is None:
                baseline = {k: {m.name: m.confidence for m in ms} for k, ms in self._by_subject.items()}
                self._replay = (replay_until, baseline)
            self._journal.clear()
            self._noted.clear()
            self.scheduler.clear()
            with self._state:
                self._by_subject = {}
                self._members = {name: {} for name in self._defs.by_name}
                # Learnt confidences come from clustering, not from the log: they survive.
            if conn is not None:
                self.store.clear(conn)
            else:
                with self.db.begin() as own:
                    self.store.clear(own)


_confidence = attrgetter("confidence")


def _present(memberships: tuple[Membership | None, ...]) -> Iterator[Membership]:
    return filter(None, memberships)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of memberships are built: each
    collection would walk every object built so far (it halved the time of a load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _shared_memberships(segment: str, keys: list[str], confidences: Any, since: Any) -> dict[str, Membership]:
    """``key -> Membership`` of a snapshot, one shared object per distinct (confidence, since)."""
    import numpy as np

    if not keys:
        return {}
    confidences_, by_confidence = np.unique(np.asarray(confidences, dtype=float), return_inverse=True)
    starts, by_start = np.unique(np.asarray(since, dtype=float), return_inverse=True)
    codes, inverse = np.unique(
        by_confidence.reshape(-1) * len(starts) + by_start.reshape(-1), return_inverse=True
    )
    objects = np.empty(len(codes), dtype=object)
    for i, code in enumerate(codes.tolist()):
        objects[i] = Membership(
            segment, float(confidences_[code // len(starts)]), float(starts[code % len(starts)])
        )
    return dict(zip(keys, objects[inverse.reshape(-1)].tolist(), strict=True))


def _recency_constants(rules: Iterable[Any]) -> tuple[float, ...]:
    """Every constant a rule compares ``recency_days`` with (where membership can flip)."""
    from attune.segments.rules.nodes import Between, Compare, InSet, leaves

    found: set[float] = set()
    for rule in rules:
        for leaf in leaves(rule.expr):
            if leaf.ref.kind != "feature" or leaf.ref.name != "recency_days":
                continue
            if (
                isinstance(leaf, Compare)
                and isinstance(leaf.value, int | float)
                and not isinstance(leaf.value, bool)
            ):
                found.add(float(leaf.value))
            elif isinstance(leaf, Between):
                found.update((float(leaf.low), float(leaf.high)))
            elif isinstance(leaf, InSet):
                found.update(
                    float(v) for v in leaf.values if isinstance(v, int | float) and not isinstance(v, bool)
                )
    return tuple(sorted(found))


def _by_name(membership: Membership) -> str:
    return membership.name


def _ref_key(ref: FeatureRef) -> str:
    return ref.column


def _spec_of(definition: Any) -> dict[str, Any]:
    """The stored form of a parsed definition."""
    return {
        "rule": definition.rule.text if definition.rule is not None else None,
        "priority": definition.priority,
        "group": definition.group,
        "description": definition.description,
        "purpose": definition.purpose,
        "kind": definition.kind,
    }


def _learnt_spec(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a learnt segment: its fields plus whatever describes its model."""
    from attune.segments.definitions import parse_definition

    fields = {k: v for k, v in spec.items() if k in {"priority", "group", "description", "purpose"}}
    stored = _spec_of(parse_definition(name, {**fields, "kind": "learnt"}))
    stored.update({k: v for k, v in spec.items() if k not in stored and k != "kind"})
    return stored


def _rule_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What ``parse_definition`` reads of a stored spec (extra keys such as a model summary stay out)."""
    fields = {"rule", "priority", "group", "description", "purpose", "kind"}
    return {k: v for k, v in spec.items() if k in fields and v is not None}
