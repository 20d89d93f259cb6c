"""Envelope encryption at rest: per-person AES-256-GCM data keys wrapped by a master key.

Each subject key has its own random 256-bit data key, stored in ``person_keys`` only in
wrapped form (encrypted with the current master key). Personal fields are encrypted with
the person's data key. :meth:`PersonKeys.shred` deletes the wrapped key (crypto-shredding):
every copy of that person's ciphertext, in backups, logs or lake files, is unreadable from then on.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, bindparam, delete, select, update

from attune.errors import ConfigError, NotFound
from attune.privacy.keyring import Keyring
from attune.privacy.sqlin import select_in
from attune.storage.tables import person_keys
from attune.storage.upsert import insert_ignore

_VERSION = b"\x01"
_NONCE = 12
_DATA_KEY = 32  # bytes: AES-256
_WRAP_AAD = b"attune/person-key/v1"
#: Prefix of an encrypted value stored inside JSON.
ENC_PREFIX = "enc:v1:"


def encrypt_with(aead: AESGCM, plaintext: bytes) -> bytes:
    """``plaintext`` sealed by a data key's cipher: version byte, random nonce, ciphertext+tag."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + aead.encrypt(nonce, plaintext, None)


def encrypt_many(items: Sequence[tuple[AESGCM, bytes]]) -> list[bytes]:
    """:func:`encrypt_with` of each (cipher, plaintext), with every nonce from one system call."""
    nonces = os.urandom(_NONCE * len(items))
    out = []
    for i, (aead, plaintext) in enumerate(items):
        nonce = nonces[i * _NONCE : (i + 1) * _NONCE]
        out.append(_VERSION + nonce + aead.encrypt(nonce, plaintext, None))
    return out


def insert_ignore_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``, skipping existing keys; how many were new.

    Straight to the driver, as storage/upsert.py does: SQLAlchemy's per-row bind processing
    costs more than the insert. One prepared statement for every row (``executemany``):
    multi-row ``VALUES`` lists sized to each batch measured slower on SQLite, since each size
    is compiled anew.
    """
    if not rows:
        return 0
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}) "
           "ON CONFLICT DO NOTHING")
    return conn.exec_driver_sql(sql, list(rows)).rowcount


class KeyShredded(NotFound):
    """The person's data key is gone (erased): their ciphertext cannot be read any more."""


class PersonKeys:
    """Creates, unwraps, caches and destroys per-person data keys."""

    def __init__(self, engine: Engine, keyring: Keyring, cache_size: int = 10_000) -> None:
        self.engine = engine
        self.keyring = keyring
        self.cache_size = cache_size
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        self._lock = threading.Lock()
        self._masters: dict[str, tuple[bytes, AESGCM]] = {}

    # -- keys ------------------------------------------------------------
    def _unwrap(self, master_id: str, wrapped: bytes) -> bytes:
        master = self.keyring.master_keys.get(master_id)
        if master is None:
            raise ConfigError(f"a data key is wrapped by master key {master_id!r}, which is not configured")
        try:
            return AESGCM(master).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _WRAP_AAD)
        except InvalidTag as exc:
            raise ConfigError(f"master key {master_id!r} does not unwrap the stored data keys") from exc

    def _wrap(self, data_key: bytes) -> tuple[str, bytes]:
        master_id, master = self._master()
        nonce = os.urandom(_NONCE)
        return master_id, nonce + master.encrypt(nonce, data_key, _WRAP_AAD)

    def _remember(self, subject_key: str, aead: AESGCM) -> None:
        with self._lock:
            self._cache[subject_key] = aead
            self._cache.move_to_end(subject_key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def cipher(self, subject_key: str, *, create: bool) -> AESGCM:
        """The AES-GCM cipher of ``subject_key``'s data key, made when ``create`` and absent."""
        with self._lock:
            cached = self._cache.get(subject_key)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            row = conn.execute(
                select(person_keys.c.master_key_id, person_keys.c.wrapped_key).where(
                    person_keys.c.subject_key == subject_key
                )
            ).first()
        if row is None:
            if not create:
                raise KeyShredded(f"no data key for {subject_key!r}: never created or erased")
            master_id, wrapped = self._wrap(AESGCM.generate_key(bit_length=256))
            with self.engine.begin() as conn:
                # Two writers may race to create the key: the first insert wins, both read it back.
                insert_ignore(
                    conn,
                    person_keys,
                    [{"subject_key": subject_key, "master_key_id": master_id, "wrapped_key": wrapped,
                      "created_at": time.time()}],
                )
                row = conn.execute(
                    select(person_keys.c.master_key_id, person_keys.c.wrapped_key).where(
                        person_keys.c.subject_key == subject_key
                    )
                ).first()
        aead = AESGCM(self._unwrap(row[0], bytes(row[1])))
        self._remember(subject_key, aead)
        return aead

    def ensure(self, subject_keys: list[str]) -> None:
        """Make sure data keys exist for all of ``subject_keys``: missing ones made in one transaction."""
        with self._lock:
            missing = [k for k in dict.fromkeys(subject_keys) if k not in self._cache]
        if not missing:
            return
        with self.engine.begin() as conn:
            ciphers = self.load_or_create(conn, missing)
        self.remember(ciphers)

    def load_or_create(self, conn: Connection, subject_keys: list[str]) -> dict[str, AESGCM]:
        """Ciphers of ``subject_keys``, creating missing data keys inside ``conn``'s transaction.

        Not cached: call :meth:`remember` once the transaction has committed (a key whose
        insert rolled back must never encrypt anything). Three statements for any number of
        keys: read existing, insert the new ones, and re-read only if another writer won a race.
        """
        ciphers = self._unwrapped(conn, subject_keys)
        # In sorted order: concurrent inserts then take row locks in one order (no deadlock).
        missing = sorted(key for key in set(subject_keys) if key not in ciphers)
        if not missing:
            return ciphers
        master_id, master = self._master()
        now = time.time()
        # Each new data key and the nonce that wraps it, from one system call for the whole
        # batch (AESGCM.generate_key reads os.urandom too, one call per key).
        step = _DATA_KEY + _NONCE
        fresh = os.urandom(step * len(missing))
        new_keys: dict[str, bytes] = {}
        rows = []
        for i, key in enumerate(missing):
            at = i * step
            data_key, nonce = fresh[at : at + _DATA_KEY], fresh[at + _DATA_KEY : at + step]
            new_keys[key] = data_key
            rows.append((key, master_id, nonce + master.encrypt(nonce, data_key, _WRAP_AAD), now))
        inserted = insert_ignore_rows(
            conn, person_keys.name, ("subject_key", "master_key_id", "wrapped_key", "created_at"), rows
        )
        if inserted == len(rows):
            ciphers.update((key, AESGCM(data_key)) for key, data_key in new_keys.items())
        else:  # some keys were made by another writer meanwhile: theirs are the ones stored
            ciphers.update(self._unwrapped(conn, list(new_keys)))
        return ciphers

    def _unwrapped(self, conn: Connection, keys: list[str]) -> dict[str, AESGCM]:
        rows = select_in(conn, person_keys, ("subject_key", "master_key_id", "wrapped_key"), "subject_key", keys)
        return {key: AESGCM(self._unwrap(master_id, bytes(wrapped))) for key, master_id, wrapped in rows}

    def _master(self) -> tuple[str, AESGCM]:
        """The current master key's id and cipher (built once per key)."""
        master_id, master = self.keyring.master_key
        cached = self._masters.get(master_id)
        if cached is None or cached[0] != master:
            cached = self._masters[master_id] = (master, AESGCM(master))
        return master_id, cached[1]

    def remember(self, ciphers: dict[str, AESGCM]) -> None:
        """Cache committed data keys' ciphers."""
        with self._lock:
            cache = self._cache
            # New keys (most, when a batch brings new people) land at the end by update();
            # only keys already cached need moving there.
            cached = [key for key in ciphers if key in cache]
            cache.update(ciphers)
            for key in cached:
                cache.move_to_end(key)
            for _ in range(len(cache) - self.cache_size):
                cache.popitem(last=False)

    def forget_all(self) -> None:
        """Drop every cached data key (another process erased people: some may be shredded)."""
        with self._lock:
            self._cache.clear()

    # -- data --------------------------------------------------------------
    def encrypt(self, subject_key: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` under ``subject_key``'s data key (created on first use)."""
        return encrypt_with(self.cipher(subject_key, create=True), plaintext)

    def decrypt(self, subject_key: str, blob: bytes) -> bytes:
        """Decrypt ``blob``; :class:`KeyShredded` when the person's key was destroyed."""
        if blob[:1] != _VERSION:
            raise ValueError("not an Attune ciphertext")
        try:
            return self.cipher(subject_key, create=False).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], None)
        except InvalidTag as exc:
            raise ValueError(f"ciphertext does not belong to {subject_key!r} or was altered") from exc

    def shred(self, subject_keys: Iterable[str]) -> int:
        """Destroy the data keys of ``subject_keys``; return how many existed."""
        keys = list(subject_keys)
        if not keys:
            return 0
        with self._lock:
            for key in keys:
                self._cache.pop(key, None)
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA secure_delete=ON")  # zero the freed page bytes
            return conn.execute(
                delete(person_keys).where(person_keys.c.subject_key.in_(bindparam("keys", expanding=True))),
                {"keys": keys},
            ).rowcount

    def rotate_master(self) -> int:
        """Re-wrap every data key under the keyring's current master key; return how many changed."""
        current, _ = self.keyring.master_key
        changed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(person_keys.c.subject_key, person_keys.c.master_key_id, person_keys.c.wrapped_key).where(
                    person_keys.c.master_key_id != current
                )
            ).all()
            for subject_key, master_id, wrapped in rows:
                new_id, new_wrapped = self._wrap(self._unwrap(master_id, bytes(wrapped)))
                conn.execute(
                    update(person_keys)
                    .where(person_keys.c.subject_key == subject_key)
                    .values(master_key_id=new_id, wrapped_key=new_wrapped)
                )
                changed += 1
        return changed

    def rename(self, conn, old: str, new: str) -> None:
        """Move a data key to a new subject key (pseudonym re-keying), inside ``conn``'s transaction."""
        conn.execute(update(person_keys).where(person_keys.c.subject_key == old).values(subject_key=new))
        with self._lock:
            self._cache.pop(old, None)


class PersonalFieldCipher:
    """Encrypts personal values (traits, contact data) for storage inside JSON columns.

    Values become strings ``enc:v1:<base64>``; trait records keep their ``source`` and ``ts``
    in clear (conflict resolution needs them, they say nothing about the person) and only
    ``value`` is sealed.
    """

    def __init__(self, keys: PersonKeys) -> None:
        self.keys = keys

    def seal(self, subject_key: str, value: Any) -> str:
        """The encrypted form of any JSON value."""
        blob = self.keys.encrypt(subject_key, orjson.dumps(value))
        return ENC_PREFIX + base64.b64encode(blob).decode()

    @staticmethod
    def is_sealed(value: Any) -> bool:
        """Whether ``value`` is an encrypted value."""
        return isinstance(value, str) and value.startswith(ENC_PREFIX)

    def open(self, subject_key: str, value: Any) -> Any:
        """The clear value (non-encrypted values pass through); :class:`KeyShredded` after erasure."""
        if not self.is_sealed(value):
            return value
        return orjson.loads(self.keys.decrypt(subject_key, base64.b64decode(value[len(ENC_PREFIX) :])))

    def seal_traits(self, subject_key: str, traits: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Trait records with every ``value`` sealed (already sealed values are kept)."""
        return {
            name: {**record, "value": record["value"] if self.is_sealed(record.get("value"))
                   else self.seal(subject_key, record.get("value"))}
            for name, record in traits.items()
        }

    def open_traits(self, subject_key: str, traits: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Trait records with every ``value`` in clear; values of an erased person are dropped."""
        out = {}
        for name, record in traits.items():
            try:
                out[name] = {**record, "value": self.open(subject_key, record.get("value"))}
            except KeyShredded:
                continue
        return out
