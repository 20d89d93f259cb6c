"""Secure defaults for ``serve``: refuse to expose an unsafe installation to the network.

On a non-loopback interface the server refuses to start while the installation is in
development mode (default secrets), while any active key is a demo/development key, or
while no master key is configured (personal data could not be encrypted). TLS certificate
and key must be given together and be readable files.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

from attune.errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def development_keys(keys: list[Any]) -> list[str]:
    """Ids of active keys made for demos or development (by their name)."""
    now = time.time()
    return [k.key_id for k in keys if k.usable(now) and k.name.lower().startswith(("demo", "dev", "test"))]


def check_listen(host: str, *, environment: str, has_master_key: bool, keys: list[Any]) -> None:
    """Raise :class:`ConfigError` when serving on ``host`` would be unsafe."""
    if is_loopback(host):
        return
    problems = []
    if environment == "development":
        problems.append('environment is "development": set environment = "production" in attune.toml')
    if not has_master_key:
        problems.append("no master key is configured (run `attune init` or set ATTUNE_PRIVACY__MASTER_KEY)")
    dev = development_keys(keys)
    if dev:
        problems.append(f"development/demo keys are active: revoke {', '.join(dev)}")
    if problems:
        raise ConfigError(f"refusing to listen on {host}: " + "; ".join(problems), errors=problems)


def tls_options(certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile`` options, checked (both or neither)."""
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise ConfigError("--ssl-certfile and --ssl-keyfile must be given together")
    for name, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not Path(path).is_file():
            raise ConfigError(f"{name}: {path} is not a readable file")
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
