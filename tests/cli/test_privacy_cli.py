"""`attune privacy export|erase|sweep|rekey` and `attune audit verify` on a store made by `attune init`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from attune.cli.main import app
from attune.runtime import Runtime
from attune.settings import load_settings
from attune.storage.tables import audit_log, events

NOW = time.time()
OLD = NOW - 400 * 86400  # older than the retention periods set below


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def installation(tmp_path: Path, store_url: str) -> list[str]:
    """A pseudonymized installation holding two people; returns the CLI's location options."""
    data_dir = tmp_path / "data"
    where = ["--data-dir", str(data_dir), "--database-url", store_url]
    assert invoke("init", *where).exit_code == 0
    runtime = Runtime.open(load_settings(data_dir=data_dir, database_url=store_url))
    try:
        report = runtime.ingest.ingest([
            {"type": "identify", "user_id": "erin-4412", "traits": {"email": "erin.x@example.com"}, "timestamp": OLD},
            {"type": "view", "anonymous_id": "device-erin-91", "item_id": "i1", "timestamp": OLD + 10},
            {"type": "alias", "user_id": "erin-4412", "properties": {"previous_id": "device-erin-91"},
             "timestamp": OLD + 20},
            {"type": "view", "user_id": "erin-4412", "item_id": "i2", "timestamp": OLD + 30},
            {"type": "view", "user_id": "frank-5523", "item_id": "i1", "timestamp": OLD + 40},
            {"type": "view", "user_id": "frank-5523", "item_id": "i3", "timestamp": NOW - 60},
        ])
        assert report.accepted == 6, report.rejected
        runtime.catch_up()
    finally:
        runtime.close()
    return where


def _open(where: list[str]) -> Runtime:
    return Runtime.open(load_settings(data_dir=Path(where[1]), database_url=where[3]))


def test_export_prints_everything_held_in_clear(installation: list[str], tmp_path: Path) -> None:
    result = invoke("privacy", "export", "erin-4412", *installation)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["user_id"] == "erin-4412"
    assert {(i["id"], i["kind"]) for i in data["identities"]} == {("erin-4412", "user"), ("device-erin-91", "anonymous")}
    assert data["profile"]["traits"]["email"] == "erin.x@example.com"  # in clear for the person
    assert sorted(e["type"] for e in data["events"]) == ["alias", "identify", "view", "view"]
    assert {e.get("user_id") or e.get("anonymous_id") for e in data["events"]} == {"erin-4412", "device-erin-91"}
    out = tmp_path / "erin.json"
    assert invoke("privacy", "export", "erin-4412", "--out", str(out), *installation).exit_code == 0
    assert json.loads(out.read_text())["events"] == data["events"]
    missing = invoke("privacy", "export", "nobody-0000", *installation)
    assert missing.exit_code == 1 and "nothing is held about user 'nobody-0000'" in missing.output


def test_erase_removes_the_person_and_leaves_no_trace(installation: list[str]) -> None:
    result = invoke("privacy", "erase", "erin-4412", *installation)
    assert result.exit_code == 0, result.output
    assert "erased erin-4412" in result.output and "event_log 4" in result.output
    again = invoke("privacy", "export", "erin-4412", *installation)
    assert again.exit_code == 1 and "nothing is held" in again.output
    assert invoke("privacy", "erase", "erin-4412", *installation).exit_code == 1  # nothing left to erase
    assert json.loads(invoke("privacy", "export", "frank-5523", *installation).stdout)["user_id"] == "frank-5523"
    if installation[3].startswith("sqlite"):
        data_dir = Path(installation[1])
        blobs = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
        for needle in ("erin-4412", "device-erin-91", "erin.x@example.com"):
            assert needle.encode() not in blobs, needle
    runtime = _open(installation)
    try:
        actions = [e["action"] for e in runtime.privacy.audit.entries()]
    finally:
        runtime.close()
    assert "person.erase" in actions and "person.export" in actions


def test_sweep_applies_the_retention_periods(installation: list[str]) -> None:
    config = Path(installation[1]) / "attune.toml"
    config.write_text(config.read_text().replace(
        "pseudonymize = true", "pseudonymize = true\nretention_days = { raw_events = 30, inactive_profiles = 30 }"
    ))
    result = invoke("privacy", "sweep", *installation)
    assert result.exit_code == 0, result.output
    # Erin was last seen 400 days ago: erased. Frank's old event leaves the log, he stays.
    assert "inactive_profiles 1" in result.output
    assert invoke("privacy", "export", "erin-4412", *installation).exit_code == 1
    frank = json.loads(invoke("privacy", "export", "frank-5523", *installation).stdout)
    assert [e["item_id"] for e in frank["events"]] == ["i3"]
    runtime = _open(installation)
    try:
        with runtime.engine.connect() as conn:
            assert conn.execute(select(events.c.ts)).scalars().all() == [pytest.approx(NOW - 60)]
    finally:
        runtime.close()


def test_audit_verify_names_the_edited_and_the_removed_entry(installation: list[str]) -> None:
    for _ in range(3):
        assert invoke("privacy", "export", "frank-5523", *installation).exit_code == 0
    intact = invoke("audit", "verify", *installation)
    assert intact.exit_code == 0 and "audit log intact: 3 entries" in intact.output
    runtime = _open(installation)
    try:
        with runtime.engine.begin() as conn:
            seqs = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq)).scalars().all()
            conn.execute(update(audit_log).where(audit_log.c.seq == seqs[1]).values(details='{"events":0}'))
    finally:
        runtime.close()
    edited = invoke("audit", "verify", *installation)
    assert edited.exit_code == 1
    assert f"entry {seqs[1]}: content does not match its hash (edited)" in edited.output
    assert f"entry {seqs[0]}" not in edited.output
    runtime = _open(installation)
    try:
        with runtime.engine.begin() as conn:
            conn.execute(delete(audit_log).where(audit_log.c.seq == seqs[1]))
    finally:
        runtime.close()
    removed = invoke("audit", "verify", *installation)
    assert removed.exit_code == 1
    assert f"entry {seqs[2]}: does not follow the previous entry" in removed.output


def test_rekey_moves_every_subject_to_the_new_pseudonym_key(installation: list[str]) -> None:
    before = json.loads(invoke("privacy", "export", "erin-4412", *installation).stdout)
    result = invoke("privacy", "rekey", *installation)
    assert result.exit_code == 0, result.output
    assert "new pseudonym key p2" in result.output and "4 subjects moved" in result.output
    runtime = _open(installation)
    try:
        with runtime.engine.connect() as conn:
            keys = set(conn.execute(select(events.c.user_key)).scalars()) | set(
                conn.execute(select(events.c.anon_key)).scalars()
            )
        assert {k[:6] for k in keys if k} == {"u:~p2.", "a:~p2."}
        assert runtime.privacy.audit.entries()[-1]["action"] == "key.pseudonym.rotate"
    finally:
        runtime.close()
    after = json.loads(invoke("privacy", "export", "erin-4412", *installation).stdout)
    assert after["events"] == before["events"] and after["identities"] == before["identities"]
    assert after["profile"]["traits"] == before["profile"]["traits"]
