"""The privacy step of ingestion: consent events, enforcement, minimization, pseudonymization.

:meth:`PrivacyTransform.apply` takes validated, enriched events and returns what may be
stored: consent events are recorded (and kept in the log, minus anything personal), events
whose purpose lacks consent are stripped or dropped, the rest are minimized, and user and
anonymous ids (and an alias's ``previous_id``) are replaced by their pseudonyms, with the raw
id registered encrypted in ``subjects``. Trait values are not touched here: they are
personal data the person gave on purpose, encrypted at rest by the profiles store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from attune.errors import ValidationFailed
from attune.events.model import Event
from attune.privacy.consent import CONSENT_EVENT, ConsentService, consent_changes
from attune.privacy.enforcement import Decision, decide, strip
from attune.privacy.minimize import MinimizationPolicy, minimize
from attune.privacy.pseudonym import SubjectRegistry
from attune.profiles.identity import SubjectKeys
from attune.settings import PrivacySettings


class PrivacyTransform:
    """Turns a batch of prepared events into the events that may be stored."""

    def __init__(
        self,
        settings: PrivacySettings,
        keys: SubjectKeys,
        consent: ConsentService,
        policy: MinimizationPolicy,
        registry: SubjectRegistry | None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.consent = consent
        self.policy = policy
        self.registry = registry
        #: Subjects to register at the end of the current batch (``None`` outside apply_batch).
        self._pending: list[tuple[str, str]] | None = None

    def apply(self, events: Sequence[Event]) -> list[Event | None]:
        """One result per input event: the event to store, or ``None`` when dropped.

        A malformed consent event raises :class:`ValidationFailed` for that event only via
        :meth:`apply_one`; here it is dropped (the caller reports rejections itself).
        """
        return [self.apply_one(event) for event in events]

    def apply_one(self, event: Event) -> Event | None:
        """The stored form of one event, or ``None`` when consent says drop."""
        if event.type == CONSENT_EVENT:
            self.consent.record(consent_changes(event, self.keys, self.settings.purposes))
        subject = self.keys.for_event(event.user_id, event.anonymous_id)
        decision = decide(
            event,
            lambda purpose: self.consent.allows(subject, purpose),
            self.settings.event_purposes,
            self.settings.purpose_actions,
        )
        if decision is Decision.DROP:
            return None
        if decision is Decision.STRIP:
            return strip(event)
        event = minimize(event, self.policy)
        return self.pseudonymize(event) if self.keys.pseudonymized else event

    def pseudonymize(self, event: Event) -> Event:
        """``event`` with its ids replaced by pseudonyms (raw ids registered, encrypted)."""
        pairs: list[tuple[str, str]] = []
        changes: dict = {}
        if event.user_id is not None:
            key = self.keys.from_raw(SubjectKeys.USER, event.user_id)
            pairs.append((key, event.user_id))
            changes["user_id"] = key[2:]
        if event.anonymous_id is not None:
            key = self.keys.from_raw(SubjectKeys.ANON, event.anonymous_id)
            pairs.append((key, event.anonymous_id))
            changes["anonymous_id"] = key[2:]
        previous = (event.properties or {}).get("previous_id") if event.type == "alias" else None
        if isinstance(previous, str | int) and not isinstance(previous, bool) and str(previous).strip():
            raw = str(previous).strip()
            as_user, as_anon = self.keys.from_raw(SubjectKeys.USER, raw), self.keys.from_raw(SubjectKeys.ANON, raw)
            pairs += [(as_user, raw), (as_anon, raw)]
            changes["properties"] = {**event.properties, "previous_id": as_user[2:]}
        if self.registry is not None and pairs:
            if self._pending is not None:
                self._pending.extend(pairs)
            else:
                self.registry.register(pairs)
        return replace(event, **changes)

    def apply_batch(self, events: Sequence[Event]) -> list[Event | None]:
        """Like :meth:`apply`, registering every new subject of the batch in one transaction."""
        self._pending = []
        try:
            out = [self.apply_one(event) for event in events]
            if self.registry is not None and self._pending:
                self.registry.register(self._pending)
        finally:
            self._pending = None
        return out


def check_consent_event(event: Event, keys: SubjectKeys, purposes: list[str]) -> list[str]:
    """Errors of a malformed consent event (for the ingest report), empty when fine."""
    try:
        consent_changes(event, keys, purposes)
    except ValidationFailed as exc:
        return exc.errors or [exc.message]
    return []
