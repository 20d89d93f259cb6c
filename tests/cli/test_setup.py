"""`attune init`: a new installation is pseudonymized from the first event, with its keyring made first."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from attune.cli.main import app
from attune.cli.setup import initialize
from attune.privacy.keyring import keyring_path
from attune.runtime import Runtime
from attune.settings import load_settings
from attune.storage.tables import events, profiles


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _store_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def test_init_turns_pseudonymization_on_for_a_new_store(tmp_path: Path, store_url: str) -> None:
    result = invoke("init", "--data-dir", str(tmp_path), "--database-url", store_url)
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "attune.toml").read_text())
    assert config["privacy"]["pseudonymize"] is True
    ring = keyring_path(tmp_path)
    assert stat.S_IMODE(ring.stat().st_mode) == 0o600
    runtime = Runtime.open(load_settings(data_dir=tmp_path, database_url=store_url))
    try:
        assert runtime.settings.privacy.pseudonymize and runtime.subject_keys.pseudonymized
        runtime.ingest.ingest([{"type": "identify", "user_id": "carol-7731", "traits": {"plan": "gold"}}])
        runtime.catch_up()
        with runtime.engine.connect() as conn:
            stored = conn.execute(select(events.c.user_key)).scalars().all()
            profile_keys = conn.execute(select(profiles.c.user_key)).scalars().all()
        assert len(stored) == 1 and stored[0].startswith("u:~p1.")
        assert profile_keys == stored
        assert runtime.profiles.get("carol-7731").to_dict()["traits"]  # still found by the raw id
    finally:
        runtime.close()
    if store_url.startswith("sqlite"):
        assert b"carol-7731" not in _store_bytes(tmp_path)


def test_init_creates_the_keyring_before_the_store_even_in_production(tmp_path: Path) -> None:
    # Outside development, opening a store never makes a keyring: init must have made it,
    # or the pseudonymizing store it configures could not be opened at all.
    settings = load_settings(data_dir=tmp_path, environment="production")
    initialize(settings)
    assert keyring_path(tmp_path).exists()
    runtime = Runtime.open(load_settings(data_dir=tmp_path, environment="production"))
    try:
        assert runtime.subject_keys.pseudonymized
    finally:
        runtime.close()


def test_init_leaves_an_existing_store_with_raw_keys_alone(tmp_path: Path) -> None:
    # A store that already holds raw keys keeps them: switching would split each person in two.
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    runtime.ingest.ingest([{"type": "view", "user_id": "dave", "item_id": "i1"}])
    runtime.catch_up()
    runtime.close()
    result = invoke("init", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "attune.toml").read_text())
    assert config.get("privacy", {}).get("pseudonymize") is not True
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        assert not runtime.subject_keys.pseudonymized
        with runtime.engine.connect() as conn:
            assert conn.execute(select(events.c.user_key)).scalars().all() == ["u:dave"]
    finally:
        runtime.close()


def test_init_keeps_an_existing_configuration(tmp_path: Path) -> None:
    (tmp_path / "attune.toml").write_text('environment = "development"\n[privacy]\npseudonymize = false\n')
    assert invoke("init", "--data-dir", str(tmp_path)).exit_code == 0
    assert tomllib.loads((tmp_path / "attune.toml").read_text())["privacy"]["pseudonymize"] is False
    assert keyring_path(tmp_path).exists()
