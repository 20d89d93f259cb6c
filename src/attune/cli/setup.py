"""``attune init``: data directory, configuration file, schema and the first admin key."""

from __future__ import annotations

import typer

from attune.auth.keys import parse_scopes
from attune.cli.context import console
from attune.runtime import Runtime
from attune.settings import CONFIG_FILE_NAME, Settings

CONFIG_TEMPLATE = """\
# Attune configuration. Precedence: defaults < this file < ATTUNE_* environment variables.
# Nested keys map to environment variables with "__", e.g. ATTUNE_INGEST__MAX_BATCH_EVENTS.

environment = "development"
# database_url = "postgresql://user@127.0.0.1:5432/attune"   # default: SQLite in this directory

[ingest]
max_batch_events = 1000
max_body_bytes = 1048576
session_timeout_seconds = 1800

[profiles]
# Trait conflicts: higher priority wins regardless of time; equal priority: newest wins.
# source_priority = { crm = 10, web = 0 }

[recommend]
popularity_half_life_days = 14.0
"""


def initialize(settings: Settings) -> None:
    """Create everything a new installation needs; print the admin key once."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = settings.data_dir / CONFIG_FILE_NAME
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE)
    runtime = Runtime.open(settings)
    try:
        if any(k.allows("admin") and k.revoked_at is None for k in runtime.keys.list()):
            console.print(
                f"{settings.data_dir} is already initialized; create more keys with "
                "`attune keys create --scopes …`"
            )
            return
        key, secret = runtime.keys.create(parse_scopes("admin"), name="initial admin")
        console.print(f"initialized {settings.data_dir.resolve()} ({runtime.engine.dialect.name} store)")
        console.print(f"admin key {key.key_id} (shown once; store it safely):")
        typer.echo(secret)
    finally:
        runtime.close()
