"""Trait values encrypted at rest, batch-wise, for the stores that keep profiles.

The profiles consumer seals every trait ``value`` with the person's data key before it
writes the ``profiles`` table, and readers open them. Values use the same stored form as
:class:`attune.privacy.crypto.PersonalFieldCipher` (``enc:v1:<base64>`` of version byte,
nonce, AES-256-GCM ciphertext and tag), so either side can read what the other wrote.

Unlike :class:`PersonalFieldCipher`, which fetches one data key per call on its own
connection, :class:`TraitVault` works on a whole batch: the data keys of every person in
it come from one :meth:`PersonKeys.load_or_create` call inside the caller's transaction.
A trait record keeps ``source`` and ``ts`` in clear (conflict resolution needs them).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine

from attune.privacy.crypto import ENC_PREFIX, PersonKeys, encrypt_with

#: Layout of a sealed blob (see :func:`attune.privacy.crypto.encrypt_with`): version, nonce, rest.
_VERSION = b"\x01"
_NONCE = 12
_PREFIX_LEN = len(ENC_PREFIX)

Records = dict[str, dict[str, Any]]


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is an encrypted value."""
    return isinstance(value, str) and value.startswith(ENC_PREFIX)


def seal_value(aead: AESGCM, value: Any) -> str:
    """The stored (encrypted) form of any JSON value under one data key."""
    return ENC_PREFIX + base64.b64encode(encrypt_with(aead, orjson.dumps(value))).decode()


def open_value(aead: AESGCM, value: Any) -> Any:
    """The clear value of a sealed value (clear values pass through); ``ValueError`` if not ours."""
    if not is_sealed(value):
        return value
    blob = base64.b64decode(value[_PREFIX_LEN:])
    if blob[:1] != _VERSION:
        raise ValueError("not an Attune ciphertext")
    try:
        return orjson.loads(aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], None))
    except InvalidTag as exc:
        raise ValueError("ciphertext does not belong to this data key or was altered") from exc


def has_sealed(records: Mapping[str, Any] | None) -> bool:
    """Whether any trait record's value is sealed."""
    return bool(records) and any(
        type(r) is dict and is_sealed(r.get("value")) for r in records.values()  # type: ignore[union-attr]
    )


def has_clear(records: Mapping[str, Any] | None) -> bool:
    """Whether any trait record's value is still in clear (needs sealing before storage)."""
    return bool(records) and any(
        type(r) is dict and not is_sealed(r.get("value")) for r in records.values()  # type: ignore[union-attr]
    )


def seal_records(aead: AESGCM, records: Records) -> Records:
    """Trait records with every clear ``value`` sealed (sealed ones are kept as they are)."""
    return {
        name: record if is_sealed(record.get("value")) else {**record, "value": seal_value(aead, record.get("value"))}
        for name, record in records.items()
    }


def open_records(aead: AESGCM | None, records: Records) -> Records:
    """Trait records with every ``value`` in clear; sealed values without a usable key are dropped.

    ``aead`` is ``None`` for a person whose key is gone (erased): their sealed values are
    unreadable by design, so they are left out rather than shown as ciphertext.
    """
    out: Records = {}
    for name, record in records.items():
        value = record.get("value") if type(record) is dict else None
        if not is_sealed(value):
            out[name] = record
            continue
        if aead is None:
            continue
        try:
            out[name] = {**record, "value": open_value(aead, value)}
        except ValueError:
            continue  # sealed under a destroyed (since re-created) key: unreadable by design
    return out


def has_sealed_values(traits: Mapping[str, Any] | None) -> bool:
    """Whether any of an event's trait values is sealed."""
    return bool(traits) and any(is_sealed(value) for value in traits.values())  # type: ignore[union-attr]


def seal_traits(aead: AESGCM, traits: Mapping[str, Any]) -> dict[str, str]:
    """An event's ``traits`` (name -> value) with every value sealed under one data key.

    Every value is sealed, even one that already looks sealed: a client cannot slip a
    value past encryption by sending text that starts with the prefix.
    """
    return {name: seal_value(aead, value) for name, value in traits.items()}


def open_traits(aead: AESGCM | None, traits: Mapping[str, Any]) -> dict[str, Any]:
    """An event's ``traits`` with every value in clear; unreadable sealed values are dropped.

    ``aead`` is ``None`` when the subject's key is gone (erased); a value sealed under a
    destroyed (since re-created) key is dropped as well. Clear values (events logged before
    traits were sealed in the log) pass through.
    """
    out: dict[str, Any] = {}
    for name, value in traits.items():
        if not is_sealed(value):
            out[name] = value
        elif aead is not None:
            try:
                out[name] = open_value(aead, value)
            except ValueError:
                continue
    return out


class TraitVault:
    """Seals and opens trait records of many people with one data-key lookup per batch."""

    def __init__(self, person_keys: PersonKeys) -> None:
        self.person_keys = person_keys

    def ciphers(self, conn: Connection, subject_keys: Iterable[str]) -> dict[str, AESGCM]:
        """Data-key ciphers of ``subject_keys`` inside ``conn``'s transaction (missing keys made).

        Made keys are not cached by :class:`PersonKeys` here (the transaction may still roll
        back); they are found again by the next lookup.
        """
        keys = sorted(set(subject_keys))
        return self.person_keys.load_or_create(conn, keys) if keys else {}

    def committed_ciphers(self, subject_keys: Iterable[str]) -> dict[str, AESGCM]:
        """Data-key ciphers of ``subject_keys``, made (and committed) when missing.

        Keys already cached (every subject registered by this process) cost nothing; the
        rest are read or made in one transaction.
        """
        keys = list(dict.fromkeys(subject_keys))
        self.person_keys.ensure(keys)
        return {key: self.person_keys.cipher(key, create=True) for key in keys}

    def open_many(self, engine: Engine, traits_by_key: Mapping[str, Records]) -> dict[str, Records]:
        """Clear trait records of many people; one key lookup for all who have sealed values."""
        sealed = [key for key, records in traits_by_key.items() if has_sealed(records)]
        ciphers: dict[str, AESGCM] = {}
        if sealed:
            with engine.begin() as conn:
                ciphers = self.ciphers(conn, sealed)
        return {
            key: open_records(ciphers.get(key), records) if key in ciphers else records
            for key, records in traits_by_key.items()
        }

    def open_one(self, subject_key: str, records: Records) -> Records:
        """Clear trait records of one person (their data key from :class:`PersonKeys`' cache)."""
        if not has_sealed(records):
            return records
        from attune.privacy.crypto import KeyShredded

        try:
            aead = self.person_keys.cipher(subject_key, create=False)
        except KeyShredded:
            aead = None
        return open_records(aead, records)
