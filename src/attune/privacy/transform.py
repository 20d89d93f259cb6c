"""The privacy step of ingestion: consent events, enforcement, minimization, pseudonymization.

:meth:`PrivacyTransform.apply` takes validated, enriched events and returns what may be
stored: consent events are recorded (and kept in the log, minus anything personal), events
whose purpose lacks consent are stripped or dropped, the rest are minimized, and user and
anonymous ids (and an alias's ``previous_id``) are replaced by their pseudonyms, with the raw
id registered encrypted in ``subjects``. When pseudonymizing, trait values are sealed under the
data key of the event's subject (its user key, else its anonymous key), so the log and the
lake hold only ciphertext that erasure (shredding that key) makes unreadable; readers open
them with :func:`attune.privacy.traits_at_rest.open_traits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

from attune.errors import ValidationFailed
from attune.events.model import Event
from attune.privacy.consent import CONSENT_EVENT, ConsentService, consent_changes
from attune.privacy.enforcement import Decision, purposes_of, strip
from attune.privacy.minimize import MinimizationPolicy, minimize_context, minimize_properties
from attune.privacy.pseudonym import SubjectRegistry
from attune.privacy.traits_at_rest import TraitVault, seal_traits
from attune.profiles.identity import SubjectKeys
from attune.settings import PrivacySettings


class PrivacyTransform:
    """Turns a batch of prepared events into the events that may be stored.

    Costs are per batch where they can be: consent is read for every subject of the batch
    in two queries, new subjects (and their data keys) are registered in one transaction,
    pseudonyms come from the pseudonymizer's LRU, and the per-type consent rules are compiled
    once.
    """

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
        #: Event type -> ((purpose, drops when refused, granted by default), ...).
        self._rules: dict[str, tuple[tuple[str, bool, bool], ...]] = {}
        #: Event type -> the decision for a subject who decided nothing (defaults alone).
        self._undecided: dict[str, Decision] = {}

    def apply(self, events: Sequence[Event]) -> list[Event | None]:
        """One result per input event: the event to store, or ``None`` when dropped."""
        return self.apply_batch(events)

    def apply_one(self, event: Event) -> Event | None:
        """The stored form of one event, or ``None`` when consent says drop."""
        return self.apply_batch([event])[0]

    def apply_batch(self, events: Sequence[Event]) -> list[Event | None]:
        """The stored form of each event (``None`` when dropped), in order.

        A consent event takes effect for the events after it in the same batch.
        """
        ids = self._keys_of_batch(events)
        subjects = [user_key or anon_key for user_key, anon_key in ids]
        states = self.consent.states_of(subjects)
        pending: dict[str, str] | None = {} if self.keys.pseudonymized else None
        out: list[Event | None] = []
        deciders = {subjects[i] for i, event in enumerate(events) if event.type == CONSENT_EVENT}
        # Consent events' decisions update ``states`` as they come and are recorded together,
        # also when a later event fails (as if each had been recorded on its own).
        decisions = self.consent.batch_decisions(states, deciders) if deciders else None
        try:
            for index, event in enumerate(events):
                subject = subjects[index]
                if event.type == CONSENT_EVENT:
                    assert decisions is not None
                    decisions.decide(
                        subject, consent_changes(event, self.keys, self.settings.purposes, subject=subject)
                    )
                decision = self._decide(event.type, states[subject])
                if decision is Decision.KEEP:
                    out.append(self._stored(event, ids[index], pending))
                elif decision is Decision.DROP:
                    out.append(None)
                else:
                    out.append(strip(event))
        finally:
            if decisions is not None:
                decisions.record()
        if self.registry is not None:
            if pending:
                self.registry.register(pending.items())
            self._seal_traits(out, subjects)
        return out

    def _seal_traits(self, out: list[Event | None], subjects: list[str]) -> None:
        """Seal the trait values of ``out``'s events in place (in the list) under their subjects' keys.

        Runs after :meth:`SubjectRegistry.register`, which caches new subjects' keys, so a
        batch usually needs no key query at all; otherwise one transaction for the rest.
        """
        at = [i for i, event in enumerate(out) if event is not None and event.traits]
        if not at:
            return
        assert self.registry is not None
        ciphers = TraitVault(self.registry.person_keys).committed_ciphers(subjects[i] for i in at)
        for i in at:
            event = out[i]
            assert event is not None and event.traits
            out[i] = replace(event, traits=seal_traits(ciphers[subjects[i]], event.traits))

    def _keys_of(self, event: Event) -> tuple[str | None, str | None]:
        """The stored keys of the event's user id and anonymous id (``None`` when absent)."""
        from_raw = self.keys.from_raw
        return (
            None if event.user_id is None else from_raw(SubjectKeys.USER, event.user_id),
            None if event.anonymous_id is None else from_raw(SubjectKeys.ANON, event.anonymous_id),
        )

    def _keys_of_batch(self, events: Sequence[Event]) -> list[tuple[str | None, str | None]]:
        """:meth:`_keys_of` of each event (one loop: this runs for every ingested event)."""
        from_raw, user, anon = self.keys.from_raw, SubjectKeys.USER, SubjectKeys.ANON
        return [
            (None if e.user_id is None else from_raw(user, e.user_id),
             None if e.anonymous_id is None else from_raw(anon, e.anonymous_id))
            for e in events
        ]

    def subject_of(self, event: Event) -> str:
        """The key ``event`` is stored under first: its user id's, else its anonymous id's."""
        if event.user_id is not None:
            return self.keys.from_raw(SubjectKeys.USER, event.user_id)
        assert event.anonymous_id is not None, "validated events carry one of the two ids"
        return self.keys.from_raw(SubjectKeys.ANON, event.anonymous_id)

    def _decide(self, event_type: str, decided: dict[str, str]) -> Decision:
        if not decided:  # most subjects decided nothing: the type's answer from defaults alone
            decision = self._undecided.get(event_type)
            if decision is None:
                decision = self._undecided[event_type] = self._decide_by_rules(event_type, decided)
            return decision
        return self._decide_by_rules(event_type, decided)

    def _decide_by_rules(self, event_type: str, decided: dict[str, str]) -> Decision:
        rules = self._rules.get(event_type)
        if rules is None:
            rules = self._rules[event_type] = tuple(
                (purpose, self.settings.purpose_actions.get(purpose, "drop") == "drop",
                 self.consent.default(purpose) == "granted")
                for purpose in purposes_of(event_type, self.settings.event_purposes)
            )
        decision = Decision.KEEP
        for purpose, drops, granted_by_default in rules:
            state = decided.get(purpose)
            if granted_by_default if state is None else state == "granted":
                continue
            if drops:
                return Decision.DROP
            decision = Decision.STRIP
        return decision

    def _stored(self, event: Event, keys: tuple[str | None, str | None], pending: dict[str, str] | None) -> Event:
        """Minimized and pseudonymized (when ``pending`` is given), in one copy; raw ids go to ``pending``."""
        context = minimize_context(event.context, self.policy.scanner) if event.context else {}
        properties = event.properties
        if properties:
            properties = minimize_properties(event.type, properties, self.policy)
            previous = event.properties.get("previous_id") if event.type == "alias" else None
            if previous is not None and properties.get("previous_id") is not previous:
                # An id, not free text: an e-mail address used as an id must survive the PII scan
                # (it is pseudonymized below, as user ids are). A copy: the scan may share dicts.
                properties = {**properties, "previous_id": previous}
        user_id, anonymous_id = event.user_id, event.anonymous_id
        if pending is not None:
            user_key, anon_key = keys
            if user_key is not None:
                pending[user_key] = user_id
                user_id = user_key[2:]
            if anon_key is not None:
                pending[anon_key] = anonymous_id
                anonymous_id = anon_key[2:]
            if event.type == "alias":
                properties = self._alias_target(properties, pending)
        return _rebuilt(event, user_id, anonymous_id, context, properties)

    def _alias_target(self, properties: dict, pending: dict[str, str]) -> dict:
        previous = properties.get("previous_id")
        if isinstance(previous, str | int) and not isinstance(previous, bool) and str(previous).strip():
            raw = str(previous).strip()
            as_user, as_anon = self.keys.from_raw(SubjectKeys.USER, raw), self.keys.from_raw(SubjectKeys.ANON, raw)
            pending[as_user] = pending[as_anon] = raw
            return {**properties, "previous_id": as_user[2:]}
        return properties

    def pseudonymize(self, event: Event) -> Event:
        """``event`` with its ids replaced by pseudonyms (raw ids registered, encrypted)."""
        pending: dict[str, str] = {}
        user_key, anon_key = self._keys_of(event)
        for key, raw in ((user_key, event.user_id), (anon_key, event.anonymous_id)):
            if key is not None:
                pending[key] = raw
        properties = self._alias_target(event.properties or {}, pending) if event.type == "alias" else event.properties
        if self.registry is not None and pending:
            self.registry.register(pending.items())
        return replace(
            event,
            user_id=None if user_key is None else user_key[2:],
            anonymous_id=None if anon_key is None else anon_key[2:],
            properties=properties,
        )


#: Event's fields in order; :func:`_rebuilt` relies on it (checked at import).
_EVENT_FIELDS = ("event_id", "type", "timestamp", "received_at", "user_id", "anonymous_id", "item_id", "value",
                 "session_id", "context", "properties", "traits")
_DIRECT = tuple(f.name for f in fields(Event)) == _EVENT_FIELDS


def _rebuilt(event: Event, user_id: str | None, anonymous_id: str | None, context: dict, properties: dict) -> Event:
    """A copy of ``event`` with new ids, context and properties.

    Positional construction costs a third of :func:`dataclasses.replace`, which matters once
    per ingested event; if ``Event`` ever gains fields, ``replace`` keeps this correct.
    """
    if not _DIRECT:
        return replace(event, user_id=user_id, anonymous_id=anonymous_id, context=context, properties=properties)
    return Event(event.event_id, event.type, event.timestamp, event.received_at, user_id, anonymous_id,
                 event.item_id, event.value, event.session_id, context, properties, event.traits)


def check_consent_event(event: Event, keys: SubjectKeys, purposes: list[str]) -> list[str]:
    """Errors of a malformed consent event (for the ingest report), empty when fine."""
    try:
        consent_changes(event, keys, purposes)
    except ValidationFailed as exc:
        return exc.errors or [exc.message]
    return []
