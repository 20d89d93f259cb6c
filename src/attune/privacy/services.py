"""All privacy components of one installation, built from settings, and their wiring.

``Privacy.open(settings, engine, subject_keys)`` builds keyring, person keys, pseudonyms,
consent, the ingest transform, erasure and audit. When pseudonymization is on it configures
the given :class:`SubjectKeys` in place, so every component already holding that object
(log, consumers, reader) stores pseudonyms from then on. ``Runtime.open`` builds it right
after the subject keys, guards the ingest service with it (:meth:`Privacy.guard`) and has
erasure flush the pipeline first (:meth:`Privacy.flush_before_erasure`); everything else
reaches it as ``runtime.privacy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from attune.privacy.audit import HEAD_FILE, AuditLog
from attune.privacy.consent import ConsentService
from attune.privacy.crypto import PersonalFieldCipher, PersonKeys
from attune.privacy.erasure import ErasureService, KeyShredEraser, LakeEraser, default_sql_erasers
from attune.privacy.keyring import Keyring, load_keyring
from attune.privacy.minimize import MinimizationPolicy, PiiScanner
from attune.privacy.pseudonym import Pseudonymizer, SubjectRegistry
from attune.privacy.transform import PrivacyTransform
from attune.profiles.identity import SubjectKeys
from attune.settings import Settings

if TYPE_CHECKING:
    from attune.consumers.pipeline import Pipeline


@dataclass
class Privacy:
    """The privacy services of one installation."""

    settings: Settings
    keyring: Keyring
    person_keys: PersonKeys
    cipher: PersonalFieldCipher
    subject_keys: SubjectKeys
    registry: SubjectRegistry
    pseudonymizer: Pseudonymizer | None
    consent: ConsentService
    transform: PrivacyTransform
    erasure: ErasureService
    audit: AuditLog
    export_hooks: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, engine: Engine, subject_keys: SubjectKeys | None = None) -> Privacy:
        """Build every component; a development installation gets a keyring file if it has none."""
        keys = subject_keys or SubjectKeys()
        keyring = load_keyring(settings, create=settings.environment == "development")
        person_keys = PersonKeys(engine, keyring)
        registry = SubjectRegistry(engine, person_keys)
        pseudonymizer = None
        if settings.privacy.pseudonymize:
            if not keyring.pseudonym_keys or not keyring.pseudonym_current:
                from attune.errors import ConfigError

                raise ConfigError("privacy.pseudonymize is on but no pseudonym key is configured: run `attune init`")
            pseudonymizer = Pseudonymizer(keyring.pseudonym_keys, keyring.pseudonym_current)
            keys.pseudonymizer, keys.registry = pseudonymizer, registry
        consent = ConsentService(engine, settings.privacy, keys)
        p = settings.privacy
        hasher = (lambda value: pseudonymizer.token(value)[1:]) if pseudonymizer is not None else None
        policy = MinimizationPolicy(
            PiiScanner(p.pii_action, hasher),
            {t: frozenset(names) for t, names in p.property_allowlist.items()},
        )
        erasure = ErasureService(engine, keys)
        for eraser in default_sql_erasers():
            erasure.register(eraser)
        erasure.register(LakeEraser(settings.lake_dir))
        erasure.register(KeyShredEraser(person_keys.shred))
        erasure.after.append(lambda request: (registry.forget(request.subject_keys), consent.invalidate()))
        return cls(
            settings=settings,
            keyring=keyring,
            person_keys=person_keys,
            cipher=PersonalFieldCipher(person_keys),
            subject_keys=keys,
            registry=registry,
            pseudonymizer=pseudonymizer,
            consent=consent,
            transform=PrivacyTransform(p, keys, consent, policy, registry if pseudonymizer else None),
            erasure=erasure,
            audit=AuditLog(engine, settings.data_dir / HEAD_FILE),
        )

    def ingest_transform(self, good: list, positions: list[int], rejected: list) -> tuple[list, list[int], list]:
        """The ingest transform (``IngestService(transform=...)``): every ingestion path (API,
        pixel, Segment, importers) prepares through it, so nothing reaches the log unminimized."""
        return filter_batch(self, good, positions, rejected)

    def flush_before_erasure(self, pipeline: Pipeline) -> None:
        """Have erasure flush every consumer's buffers before it rewrites files (the lake)."""

        def flush_consumers() -> None:
            for runner in pipeline.runners:
                runner.flush()

        self.erasure.before_files.append(flush_consumers)


def filter_batch(privacy: Privacy, good: list, positions: list[int], rejected: list) -> tuple[list, list[int], list]:
    """Apply the privacy transform to a prepared batch (dropped events vanish silently)."""
    if not any(event.type == "consent" for event in good):
        checked, checked_positions = good, positions
    else:
        checked, checked_positions = _checked_consent(privacy, good, positions, rejected)
    out, out_positions = [], []
    for stored, position in zip(privacy.transform.apply_batch(checked), checked_positions, strict=True):
        if stored is not None:
            out.append(stored)
            out_positions.append(position)
    rejected.sort(key=lambda r: r.index)
    return out, out_positions, rejected


def _checked_consent(privacy: Privacy, good: list, positions: list[int], rejected: list) -> tuple[list, list[int]]:
    """The batch without malformed consent events, which become rejections."""
    from attune.ingest.service import Rejection
    from attune.privacy.transform import check_consent_event

    checked, checked_positions = [], []
    for event, position in zip(good, positions, strict=True):
        if event.type == "consent":
            errors = check_consent_event(event, privacy.subject_keys, privacy.settings.privacy.purposes)
            if errors:
                rejected.append(Rejection(position, errors))
                continue
        checked.append(event)
        checked_positions.append(position)
    return checked, checked_positions
