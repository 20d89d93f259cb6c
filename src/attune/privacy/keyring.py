"""The keyring: master keys (wrapping per-person data keys) and pseudonym (HMAC) keys.

Keys come from settings (``[privacy] master_key`` / ``pseudonym_keys``, or the matching
``ATTUNE_PRIVACY__*`` variables) or from ``keyring.json`` in the data directory, which
``attune init`` creates readable by its owner only (mode 0600). Every key has an id, so keys
can be rotated: new data is written under the current key and older ids stay readable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from attune.errors import ConfigError
from attune.settings import Settings

KEYRING_FILE = "keyring.json"


@dataclass
class Keyring:
    """Key material by id, and which id new writes use."""

    master_keys: dict[str, bytes] = field(default_factory=dict)
    master_current: str | None = None
    pseudonym_keys: dict[str, bytes] = field(default_factory=dict)
    pseudonym_current: str | None = None

    @property
    def master_key(self) -> tuple[str, bytes]:
        """(id, key) of the master key new data keys are wrapped with; :class:`ConfigError` if none."""
        if not self.master_current or self.master_current not in self.master_keys:
            raise ConfigError(
                "no master key is configured: run `attune init`, or set ATTUNE_PRIVACY__MASTER_KEY "
                "(base64 of 32 random bytes)"
            )
        return self.master_current, self.master_keys[self.master_current]


def keyring_path(data_dir: Path) -> Path:
    """Where the data directory's keyring file lives."""
    return data_dir / KEYRING_FILE


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str, what: str, min_len: int = 32) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not valid base64") from exc
    if len(raw) < min_len:
        raise ConfigError(f"{what}: must be at least {min_len} bytes, got {len(raw)}")
    return raw


def _write_private(path: Path, data: dict) -> None:
    """Write ``data`` as JSON readable by the owner only, replacing the file atomically."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable keyring ({exc})") from exc


def create_keyring(data_dir: Path) -> Path:
    """Create ``keyring.json`` (mode 0600) with a fresh master and pseudonym key, if absent."""
    path = keyring_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _write_private(
            path,
            {
                "master": {"current": "m1", "keys": {"m1": _b64(secrets.token_bytes(32))}},
                "pseudonym": {"current": "p1", "keys": {"p1": _b64(secrets.token_bytes(32))}},
            },
        )
    return path


def add_key(data_dir: Path, kind: str) -> str:
    """Add a new current key of ``kind`` (``master`` or ``pseudonym``) to the file; return its id."""
    path = create_keyring(data_dir)
    data = _read_file(path)
    section = data.setdefault(kind, {"current": None, "keys": {}})
    prefix = "m" if kind == "master" else "p"
    n = 1 + max((int(k[1:]) for k in section["keys"] if k[1:].isdigit()), default=0)
    key_id = f"{prefix}{n}"
    section["keys"][key_id] = _b64(secrets.token_bytes(32))
    section["current"] = key_id
    _write_private(path, data)
    return key_id


def load_keyring(settings: Settings, *, create: bool = False) -> Keyring:
    """The keyring from settings and the data directory's file (settings win); create the file if asked."""
    path = keyring_path(settings.data_dir)
    if create:
        create_keyring(settings.data_dir)
    ring = Keyring()
    if path.exists():
        data = _read_file(path)
        for kind in ("master", "pseudonym"):
            section = data.get(kind) or {}
            keys = {kid: _unb64(v, f"{path}: {kind} key {kid}") for kid, v in (section.get("keys") or {}).items()}
            setattr(ring, f"{kind}_keys", keys)
            setattr(ring, f"{kind}_current", section.get("current"))
    privacy = settings.privacy
    if privacy.master_key:
        ring.master_keys[privacy.master_key_id] = _unb64(privacy.master_key, "privacy.master_key")
        ring.master_current = privacy.master_key_id
    if privacy.pseudonym_keys:
        for kid, value in privacy.pseudonym_keys.items():
            ring.pseudonym_keys[kid] = _unb64(value, f"privacy.pseudonym_keys.{kid}")
        ring.pseudonym_current = privacy.pseudonym_key_id or max(privacy.pseudonym_keys)
    elif privacy.pseudonym_key_id:
        ring.pseudonym_current = privacy.pseudonym_key_id
    if ring.pseudonym_current and ring.pseudonym_current not in ring.pseudonym_keys:
        raise ConfigError(f"privacy.pseudonym_key_id: no key with id {ring.pseudonym_current!r}")
    return ring


def has_master_key(settings: Settings) -> bool:
    """Whether a usable master key is configured (settings or keyring file)."""
    try:
        ring = load_keyring(settings)
        ring.master_key  # noqa: B018 - raises when missing
    except ConfigError:
        return False
    return True
