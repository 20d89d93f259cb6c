"""The audit chain detects edited, removed and truncated entries; sweeps keep it verifiable."""

from __future__ import annotations

import time

from sqlalchemy import delete, update

from attune.privacy.audit import AuditLog
from attune.storage.tables import audit_log


def filled(runtime, tmp_path, n: int = 5) -> AuditLog:
    log = AuditLog(runtime.engine, tmp_path / "audit.head")
    for i in range(n):
        log.append("key1", "person.export", f"u:{i}", {"events": i})
    return log


def test_intact_chain_verifies(runtime, tmp_path) -> None:
    result = filled(runtime, tmp_path).verify()
    assert result.ok and result.entries == 5 and result.problems == []


def test_edited_entry_is_detected(runtime, tmp_path) -> None:
    log = filled(runtime, tmp_path)
    with runtime.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(target="u:someone-else"))
    result = log.verify()
    assert not result.ok and any("entry 3" in p and "edited" in p for p in result.problems)


def test_removed_entry_is_detected(runtime, tmp_path) -> None:
    log = filled(runtime, tmp_path)
    with runtime.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    result = log.verify()
    assert not result.ok and any("entry 3" in p and "removed" in p for p in result.problems)


def test_removed_last_and_first_entries_are_detected(runtime, tmp_path) -> None:
    log = filled(runtime, tmp_path)
    with runtime.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
    assert not log.verify().ok
    log2 = filled(runtime, tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    with runtime.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 1))
    assert any("anchor" in p for p in log2.verify().problems)


def test_sweep_keeps_the_chain_verifiable(runtime, tmp_path) -> None:
    log = filled(runtime, tmp_path, 3)
    time.sleep(0.01)
    cutoff = time.time()
    log.append("key1", "person.erase", "u:9")
    assert log.sweep(cutoff) == 3
    result = log.verify()
    assert result.ok, result.problems
    assert [e["action"] for e in log.entries()] == ["person.erase", "audit.sweep"]


def test_a_nul_in_a_target_is_stored_escaped_and_verifies(runtime, tmp_path) -> None:
    log = filled(runtime, tmp_path, n=1)
    log.append("key1", "profile.read", "u:bad\x00id")
    entries = log.entries()
    assert entries[-1]["target"] == "u:bad\\x00id"
    assert log.verify().ok
