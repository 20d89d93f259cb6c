"""The `attune` command: init, keys, replay and demo, through Typer's runner."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attune.api.app import create_app
from attune.cli.demo import run_demo
from attune.cli.main import app
from attune.runtime import Runtime
from attune.settings import load_settings


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_init_prints_the_admin_key_last_and_stores_only_its_hash(tmp_path: Path) -> None:
    result = invoke("init", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("atk_")
    assert (tmp_path / "attune.toml").exists()
    assert secret.encode() not in (tmp_path / "attune.db").read_bytes()
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        assert runtime.keys.verify(secret).allows("admin")
    finally:
        runtime.close()
    again = invoke("init", "--data-dir", str(tmp_path))
    assert again.exit_code == 0 and "already initialized" in again.output
    assert "atk_" not in again.stdout  # no second admin key is minted


def test_keys_create_list_and_revoke(tmp_path: Path) -> None:
    created = invoke("keys", "create", "--scopes", "ingest,read", "--name", "web", "--data-dir", str(tmp_path))
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    key_id = secret.split("_")[1]
    listed = invoke("keys", "list", "--data-dir", str(tmp_path))
    assert key_id in listed.stdout and "ingest,read" in listed.stdout and secret not in listed.stdout
    assert invoke("keys", "revoke", key_id, "--data-dir", str(tmp_path)).exit_code == 0
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        assert runtime.keys.verify(secret) is None
        # Key changes are in the audit log.
        audited = [(e["action"], e["target"]) for e in runtime.privacy.audit.entries()]
        assert audited == [("key.create", key_id), ("key.revoke", key_id)]
    finally:
        runtime.close()


def test_bad_input_gets_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    bad_scope = invoke("keys", "create", "--scopes", "ingest,superuser", "--data-dir", str(tmp_path))
    assert bad_scope.exit_code == 1
    assert "unknown superuser" in bad_scope.output and "Traceback" not in bad_scope.output
    missing = invoke("keys", "revoke", "nope", "--data-dir", str(tmp_path))
    assert missing.exit_code == 1 and "no API key with id 'nope'" in missing.output


def test_replay_rebuilds_the_same_profiles(tmp_path: Path) -> None:
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        runtime.ingest.ingest(
            [
                {"type": "view", "anonymous_id": "d1", "item_id": "i1", "timestamp": 1_790_000_000},
                {"type": "identify", "user_id": "u1", "anonymous_id": "d1", "traits": {"tier": "gold"}},
                {"type": "purchase", "user_id": "u1", "item_id": "i2", "value": 30.0},
            ]
        )
        runtime.catch_up()
        before = runtime.profiles.get("u1").to_dict()
    finally:
        runtime.close()
    result = invoke("replay", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "replayed 3 events" in result.output
    runtime = Runtime.open(load_settings(data_dir=tmp_path))
    try:
        assert runtime.profiles.get("u1").to_dict() == before
    finally:
        runtime.close()


def test_demo_prepares_a_serving_installation(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    facts = run_demo(data_dir, port=8000, users=150, serve=False)
    runtime = Runtime.open(load_settings(data_dir=data_dir))
    try:
        with TestClient(create_app(runtime, run_consumers=False)) as client:
            read = {"Authorization": f"Bearer {facts['read']}"}
            recs = client.get(f"/v1/users/{facts['user_id']}/recommendations?k=5", headers=read).json()
            assert len(recs["items"]) == 5
            seen = {i["item_id"] for i in runtime.profiles.get(facts["user_id"]).recent_interactions}
            assert not seen & {i["item_id"] for i in recs["items"]}
            profile = client.get(f"/v1/users/{facts['user_id']}/profile", headers=read).json()
            assert {"age", "country"} <= set(profile["traits"])
            denied = client.post(
                "/v1/events", json={"events": []}, headers={"Authorization": f"Bearer {facts['read']}"}
            )
            assert denied.status_code == 403
            sent = client.post(
                "/v1/events",
                json={"events": [{"type": "view", "user_id": facts["user_id"], "item_id": "i00001"}]},
                headers={"Authorization": f"Bearer {facts['ingest']}"},
            )
            assert sent.json()["accepted"] == 1
    finally:
        runtime.close()
    # Running the demo again rebuilds its own directory ...
    run_demo(data_dir, port=8000, users=150, serve=False)
    # ... but never deletes a directory it did not make.
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "data.txt").write_text("keep me")
    result = invoke("demo", "--data-dir", str(foreign), "--no-serve", "--users", "100")
    assert result.exit_code == 1 and (foreign / "data.txt").exists()
