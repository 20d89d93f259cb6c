"""Envelope encryption: per-person data keys, crypto-shredding, master-key rotation, the keyring file."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.errors import ConfigError
from attune.privacy.crypto import KeyShredded, PersonalFieldCipher, PersonKeys
from attune.privacy.keyring import Keyring, add_key, create_keyring, load_keyring
from attune.settings import load_settings
from attune.storage.engine import make_engine
from attune.storage.migrate import upgrade


def ring(**masters: bytes) -> Keyring:
    current = sorted(masters)[-1]
    return Keyring(master_keys=dict(masters), master_current=current)


def test_roundtrip_and_ciphertext_hides_plaintext(engine) -> None:
    keys = PersonKeys(engine, ring(m1=os.urandom(32)))
    blob = keys.encrypt("u:alice", b"alice@example.com")
    assert b"alice" not in blob
    assert keys.decrypt("u:alice", blob) == b"alice@example.com"
    assert keys.encrypt("u:alice", b"x") != keys.encrypt("u:alice", b"x")  # fresh nonce each time


def test_another_persons_key_cannot_decrypt(engine) -> None:
    keys = PersonKeys(engine, ring(m1=os.urandom(32)))
    blob = keys.encrypt("u:alice", b"secret")
    keys.encrypt("u:bob", b"other")
    with pytest.raises(ValueError):
        keys.decrypt("u:bob", blob)


def test_shred_makes_every_copy_unreadable(engine) -> None:
    master = os.urandom(32)
    keys = PersonKeys(engine, ring(m1=master))
    copies = [keys.encrypt("u:alice", b"street 1") for _ in range(3)]
    kept = keys.encrypt("u:bob", b"bob data")
    assert keys.shred(["u:alice"]) == 1
    fresh = PersonKeys(engine, ring(m1=master))  # another process, no cache
    for blob in copies:
        for reader in (keys, fresh):
            with pytest.raises(KeyShredded):
                reader.decrypt("u:alice", blob)
    assert fresh.decrypt("u:bob", kept) == b"bob data"


def test_master_rotation_rewraps_and_old_master_can_go(engine) -> None:
    old, new = os.urandom(32), os.urandom(32)
    keys = PersonKeys(engine, ring(m1=old))
    blob = keys.encrypt("u:alice", b"traits")
    rotated = PersonKeys(engine, ring(m1=old, m2=new))
    assert rotated.rotate_master() == 1
    only_new = PersonKeys(engine, ring(m2=new))
    assert only_new.decrypt("u:alice", blob) == b"traits"
    with pytest.raises(ConfigError):
        PersonKeys(engine, ring(m1=os.urandom(32))).decrypt("u:alice", blob)


def test_field_cipher_roundtrips_any_json(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    cipher = PersonalFieldCipher(PersonKeys(engine, ring(m1=b"k" * 32)))

    @settings(max_examples=50, deadline=None)
    @given(st.recursive(st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none()),
                        lambda inner: st.lists(inner, max_size=3), max_leaves=5))
    def check(value) -> None:
        sealed = cipher.seal("u:p", value)
        assert cipher.is_sealed(sealed)
        assert cipher.open("u:p", sealed) == value

    check()
    engine.dispose()


def test_traits_sealed_keep_source_and_time(engine) -> None:
    cipher = PersonalFieldCipher(PersonKeys(engine, ring(m1=os.urandom(32))))
    traits = {"email": {"value": "a@b.example", "source": "crm", "ts": 5.0}}
    sealed = cipher.seal_traits("u:a", traits)
    assert sealed["email"]["source"] == "crm" and "a@b" not in str(sealed)
    assert cipher.open_traits("u:a", sealed) == traits
    cipher.keys.shred(["u:a"])
    assert cipher.open_traits("u:a", sealed) == {}


def test_keyring_file_is_private_and_rotates(tmp_path) -> None:
    path = create_keyring(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings(data_dir=tmp_path)
    first = load_keyring(settings)
    assert first.master_key[0] == "m1" and len(first.master_key[1]) == 32
    assert add_key(tmp_path, "master") == "m2"
    second = load_keyring(settings)
    assert second.master_key[0] == "m2" and set(second.master_keys) == {"m1", "m2"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_master_key_from_settings_and_bad_values(tmp_path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    ring_ = load_keyring(load_settings(data_dir=tmp_path, privacy={"master_key": key}))
    assert ring_.master_key[0] == "env"
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_keyring(load_settings(data_dir=tmp_path, privacy={"master_key": base64.b64encode(b"short").decode()}))
    with pytest.raises(ConfigError, match="no master key"):
        load_keyring(load_settings(data_dir=tmp_path)).master_key  # noqa: B018
