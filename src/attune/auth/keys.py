"""API keys: random secrets shown once, stored only as SHA-256 hashes.

Scopes: ``ingest`` (send events: safe to publish as a browser write key), ``read``
(profiles, recommendations, segments) and ``admin`` (everything, including catalog and
key management). ``admin`` implies the other two.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from attune.errors import NotFound, ValidationFailed
from attune.storage.tables import api_keys

SCOPES = ("ingest", "read", "admin")
_PREFIX = "atk_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key's public facts."""

    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def allows(self, scope: str) -> bool:
        """Whether this key grants ``scope`` (admin grants everything)."""
        return scope in self.scopes or "admin" in self.scopes

    def usable(self, now: float) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def hash_key(secret: str) -> str:
    """The stored form of a key. Keys are 256-bit random, so a fast hash is safe here."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    """Parse ``ingest,read`` into a scope set, refusing unknown names."""
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(f"scopes: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(SCOPES)}")
    return scopes


class KeyStore:
    """Creates, verifies, lists and revokes keys."""

    def __init__(self, engine: Engine, cache_seconds: float = 1.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def create(self, scopes: frozenset[str], name: str = "", expires_in: float | None = None) -> tuple[ApiKey, str]:
        """Make a key; return its facts and the secret (which is not stored)."""
        key_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        key = ApiKey(key_id, name, scopes, now, now + expires_in if expires_in else None, None)
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    key_id=key_id,
                    key_hash=hash_key(secret),
                    name=name,
                    scopes=",".join(sorted(scopes)),
                    created_at=now,
                    expires_at=key.expires_at,
                )
            )
        return key, secret

    def verify(self, secret: str) -> ApiKey | None:
        """The usable key for ``secret``, or ``None``."""
        digest = hash_key(secret)
        now = time.time()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_seconds:
            key = cached[1]
        else:
            with self.engine.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)).mappings().first()
            key = _from_row(row) if row else None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, key)
        return key if key is not None and key.usable(now) else None

    def list(self) -> list[ApiKey]:
        """All keys, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc())).mappings().all()
        return [_from_row(r) for r in rows]

    def revoke(self, key_id: str) -> None:
        """Revoke a key by id; it stops working at once."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=time.time())
            ).rowcount
        if not done:
            raise NotFound(f"no API key with id {key_id!r}")
        self._cache.clear()


def _from_row(row) -> ApiKey:  # noqa: ANN001 - SQLAlchemy RowMapping
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        scopes=frozenset(row["scopes"].split(",")),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
