"""Pseudonyms: keyed, stable, rotated; SubjectKeys stores them and shows raw ids back."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from attune.privacy.crypto import PersonKeys
from attune.privacy.keyring import Keyring
from attune.privacy.pseudonym import Pseudonymizer, SubjectRegistry, is_token, rekey
from attune.profiles.identity import SubjectKeys
from attune.storage.tables import events, profiles

K1, K2 = os.urandom(32), os.urandom(32)


@given(st.text(alphabet="ghijklmnopqrstuvwxyz@._-", min_size=5, max_size=50))
def test_token_is_keyed_stable_and_recognized(raw: str) -> None:
    p1 = Pseudonymizer({"p1": K1}, "p1")
    token = p1.token(raw)
    assert token == p1.token(raw) and is_token(token) and raw not in token[4:]
    assert Pseudonymizer({"p1": K2}, "p1").token(raw) != token  # another key, another pseudonym
    assert p1.key_id_of(token) == "p1"


def test_subject_keys_pseudonymize_and_display_raw_ids(make_runtime) -> None:
    runtime = make_runtime()
    ring = Keyring(master_keys={"m1": os.urandom(32)}, master_current="m1")
    registry = SubjectRegistry(runtime.engine, PersonKeys(runtime.engine, ring))
    keys = SubjectKeys(Pseudonymizer({"p1": K1}, "p1"), registry)
    key = keys.user("alice@example.com")
    assert key.startswith("u:~p1.") and keys.is_user(key) and "alice" not in key
    assert keys.anon("dev-1").startswith("a:~p1.")
    assert keys.user(key[2:]) == key  # ids already pseudonymized (from the log) map to themselves
    assert keys.from_raw("u:", key[2:]) != key  # ...but never when they arrive raw at ingest
    assert keys.display_id(key) == key[2:]  # unknown raw id: the pseudonym is shown
    registry.register([(key, "alice@example.com")])
    fresh = SubjectKeys(keys.pseudonymizer, SubjectRegistry(runtime.engine, registry.person_keys))
    assert fresh.display_id(key) == "alice@example.com"
    registry.person_keys.shred([key])
    assert SubjectKeys(keys.pseudonymizer, SubjectRegistry(runtime.engine, registry.person_keys)).display_id(key) == key[2:]


def test_a_subject_another_process_registered_is_found_by_reading_not_written_again(make_runtime) -> None:
    runtime = make_runtime()
    ring = Keyring(master_keys={"m1": os.urandom(32)}, master_current="m1")
    worker = SubjectRegistry(runtime.engine, PersonKeys(runtime.engine, ring))
    serving = SubjectRegistry(runtime.engine, PersonKeys(runtime.engine, ring))
    keys = SubjectKeys(Pseudonymizer({"p1": K1}, "p1"), worker)
    kim, lea = keys.user("kim"), keys.user("lea")
    worker.register([(kim, "kim")])
    writes = []
    real = serving.person_keys.load_or_create
    serving.person_keys.load_or_create = lambda tx, subject_keys: writes.append(list(subject_keys)) or real(
        tx, subject_keys
    )
    assert serving.register([(kim, "kim")]) == 1  # new to this process...
    assert writes == []  # ...but registered already: no write transaction
    assert serving.raw_id(kim) == "kim"
    serving.register([(kim, "kim"), (lea, "lea")])
    assert writes == [[lea]]  # only the subject nobody registered yet is written
    assert worker.raw_id(lea) == "lea"


def test_rotation_keeps_old_subjects_and_rekey_moves_them(make_runtime) -> None:
    runtime = make_runtime()
    ring = Keyring(master_keys={"m1": os.urandom(32)}, master_current="m1")
    registry = SubjectRegistry(runtime.engine, PersonKeys(runtime.engine, ring))
    old = SubjectKeys(Pseudonymizer({"p1": K1}, "p1"), registry)
    # Store an event and a profile under the old key, the way ingest and the consumer do.
    runtime.subject_keys.pseudonymizer, runtime.subject_keys.registry = old.pseudonymizer, registry
    alice_old = old.user("alice")
    registry.register([(alice_old, "alice")])
    runtime.ingest.ingest([{"type": "view", "user_id": "alice", "item_id": "i1"}])  # pseudonymized at ingest
    runtime.catch_up()
    both = Pseudonymizer({"p1": K1, "p2": K2}, "p2")
    rotated = SubjectKeys(both, registry)
    assert rotated.user("alice") == alice_old  # a stored subject keeps its key until re-keyed
    assert rotated.user("bob").startswith("u:~p2.")  # new subjects get the newest key
    assert rekey(runtime.engine, both, registry) == 1
    alice_new = rotated.user("alice")
    assert alice_new.startswith("u:~p2.") and alice_new == "u:" + both.token("alice")
    with runtime.engine.connect() as conn:
        assert conn.execute(select(events.c.user_key)).scalars().all() == [alice_new]
        assert conn.execute(select(profiles.c.user_key)).scalars().all() == [alice_new]
        body = conn.execute(select(events.c.body)).scalar()
    assert alice_new[2:].encode() in body and alice_old[2:].encode() not in body
    assert rotated.display_id(alice_new) == "alice"
