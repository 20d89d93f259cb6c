"""Batch paths of envelope encryption: many data keys in one transaction, inserts that skip existing rows."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from attune.privacy.crypto import PersonKeys, encrypt_many, insert_ignore_rows
from attune.privacy.keyring import Keyring
from attune.storage.tables import person_keys, subjects


def test_insert_ignore_rows_skips_existing_rows(engine) -> None:
    rows = [(f"u:s{i:05d}", "p1", b"x", 1.0) for i in range(2_500)]
    columns = ("subject_key", "key_id", "raw_id", "created_at")
    with engine.begin() as conn:
        assert insert_ignore_rows(conn, subjects.name, columns, rows[:1_200]) == 1_200
        assert insert_ignore_rows(conn, subjects.name, columns, rows) == 1_300
        assert insert_ignore_rows(conn, subjects.name, columns, []) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subjects)).scalar() == 2_500


def test_many_new_data_keys_in_one_transaction(engine) -> None:
    keys = PersonKeys(engine, Keyring(master_keys={"m1": os.urandom(32)}, master_current="m1"))
    subject_keys = [f"u:p{i}" for i in range(1_500)] + ["u:p1", "u:p2"]  # duplicates count once
    with engine.begin() as conn:
        made = keys.load_or_create(conn, subject_keys)
    assert set(made) == set(subject_keys)
    keys.remember(made)
    blobs = encrypt_many([(made[k], k.encode()) for k in subject_keys])
    assert len({blob[1:13] for blob in blobs}) == len(blobs)  # a fresh nonce each
    # Another process (an empty cache) unwraps the stored keys and reads every blob.
    other = PersonKeys(engine, keys.keyring)
    assert [other.decrypt(k, blob) for k, blob in zip(subject_keys, blobs, strict=True)] == [
        k.encode() for k in subject_keys
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(person_keys)).scalar() == 1_500
        wrapped = conn.execute(select(person_keys.c.wrapped_key)).scalars().all()
    assert len({bytes(w) for w in wrapped}) == 1_500  # every data key distinct
    with engine.begin() as conn:  # a second call finds them all: nothing new is made
        again = keys.load_or_create(conn, subject_keys[:10])
    assert {k: other.decrypt(k, encrypt_many([(again[k], b"z")])[0]) for k in again} == {
        k: b"z" for k in subject_keys[:10]
    }
