"""API keys: only hashes are stored; scopes, admin, revocation and expiry."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from attune.auth.keys import KeyStore, hash_key, parse_scopes
from attune.errors import NotFound, ValidationFailed
from attune.runtime import Runtime
from attune.storage.tables import api_keys


@pytest.fixture
def store(runtime: Runtime) -> KeyStore:
    # No verification cache: revocation and expiry are visible at once.
    return KeyStore(runtime.engine, cache_seconds=0)


def test_only_the_hash_is_stored(store: KeyStore) -> None:
    key, secret = store.create(frozenset({"read"}), name="dashboard")
    with store.engine.connect() as conn:
        row = conn.execute(select(api_keys)).mappings().one()
    assert secret not in {str(v) for v in row.values()}
    assert row["key_hash"] == hash_key(secret) != secret
    assert row["key_id"] == key.key_id and secret.startswith(f"atk_{key.key_id}_")
    assert len(secret) > 40


def test_verify_returns_the_key_with_its_scopes(store: KeyStore) -> None:
    key, secret = store.create(frozenset({"ingest", "read"}), name="app")
    verified = store.verify(secret)
    assert verified is not None
    assert (verified.key_id, verified.name, verified.scopes) == (
        key.key_id,
        "app",
        frozenset({"ingest", "read"}),
    )
    assert store.verify(secret + "x") is None
    assert store.verify("") is None


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ({"ingest"}, {"ingest"}),
        ({"read"}, {"read"}),
        ({"ingest", "read"}, {"ingest", "read"}),
        ({"admin"}, {"ingest", "read", "admin"}),  # admin implies the others
    ],
)
def test_scopes(store: KeyStore, scopes: set[str], allowed: set[str]) -> None:
    key = store.verify(store.create(frozenset(scopes))[1])
    assert key is not None
    assert {s for s in ("ingest", "read", "admin") if key.allows(s)} == allowed


def test_revoked_keys_stop_working(store: KeyStore) -> None:
    key, secret = store.create(frozenset({"admin"}))
    store.revoke(key.key_id)
    assert store.verify(secret) is None
    assert store.list()[0].revoked_at is not None


def test_revocation_clears_the_verification_cache(runtime: Runtime) -> None:
    cached = KeyStore(runtime.engine, cache_seconds=3600)
    key, secret = cached.create(frozenset({"read"}))
    assert cached.verify(secret) is not None
    cached.revoke(key.key_id)
    assert cached.verify(secret) is None


def test_revoking_an_unknown_key_is_not_found(store: KeyStore) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.revoke("nope")


def test_expired_keys_stop_working(store: KeyStore) -> None:
    key, secret = store.create(frozenset({"read"}), expires_in=3600)
    assert key.expires_at == pytest.approx(time.time() + 3600, abs=60)
    assert store.verify(secret) is not None
    assert key.usable(time.time() + 7200) is False
    _short, short_secret = store.create(frozenset({"read"}), expires_in=0.001)
    time.sleep(0.01)
    assert store.verify(short_secret) is None


def test_list_is_newest_first(store: KeyStore) -> None:
    first, _ = store.create(frozenset({"read"}), name="first")
    time.sleep(0.002)
    second, _ = store.create(frozenset({"read"}), name="second")
    assert [k.name for k in store.list()] == ["second", "first"]
    assert {first.key_id, second.key_id} == {k.key_id for k in store.list()}


def test_parse_scopes() -> None:
    assert parse_scopes(" ingest , read ") == frozenset({"ingest", "read"})
    with pytest.raises(ValidationFailed, match="unknown superuser"):
        parse_scopes("read,superuser")
    with pytest.raises(ValidationFailed, match="none given"):
        parse_scopes(" , ")
