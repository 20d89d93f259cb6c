"""``attune init``: data directory, configuration file, schema and the first admin key."""

from __future__ import annotations

import typer

from attune.auth.keys import parse_scopes
from attune.cli.context import console
from attune.privacy.keyring import create_keyring
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

#: Appended for a new store: ids are stored as keyed pseudonyms from the first event on.
#: (Not for a data directory that already holds a store: its stored keys are raw ids, and
#: switching would split every existing person in two; `attune privacy rekey` does not convert.)
PRIVACY_TEMPLATE = """
[privacy]
# User and anonymous ids are stored as HMAC-SHA256 pseudonyms under the keys in keyring.json
# (mode 0600, created by `attune init`; back it up apart from the data: without it, raw ids
# and encrypted personal fields cannot be read).
pseudonymize = true
# consent_mode = "opt-out"            # or "opt-in": the default for purposes without a decision
# pii_action = "remove"               # or "hash": e-mails, phones and card numbers in free text
# retention_days = { raw_events = 395, inactive_profiles = 730, audit = 2190 }
"""


def _store_is_empty(settings: Settings) -> bool:
    """Whether the store holds no events and no profiles yet (or does not exist)."""
    from sqlalchemy import func, select

    from attune.storage.engine import dispose, make_engine, table_names
    from attune.storage.tables import events, profiles

    if settings.database_url is None and not (settings.data_dir / "attune.db").exists():
        return True
    engine = make_engine(settings.resolved_database_url)
    try:
        names = table_names(engine)
        with engine.connect() as conn:
            return not any(
                table.name in names and conn.execute(select(func.count()).select_from(table)).scalar()
                for table in (events, profiles)
            )
    finally:
        dispose(engine)


def initialize(settings: Settings) -> None:
    """Create everything a new installation needs; print the admin key once.

    A new installation gets a configuration file with pseudonymization on and a keyring
    (master and pseudonym keys) made before the store is first opened, so no id is ever
    stored in clear.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = settings.data_dir / CONFIG_FILE_NAME
    if not config.exists():
        new_store = _store_is_empty(settings)
        config.write_text(CONFIG_TEMPLATE + (PRIVACY_TEMPLATE if new_store else ""))
        if new_store:
            # The settings were read before the file existed: apply what it now says.
            settings = settings.model_copy(
                update={"privacy": settings.privacy.model_copy(update={"pseudonymize": True})}
            )
    create_keyring(settings.data_dir)
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
