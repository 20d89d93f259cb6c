"""The audit log: append-only and hash-chained, so edits and removals are detectable.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON (sorted
keys, no spaces) of the entry's fields. Editing an entry breaks its own hash; removing one
breaks the next entry's link. Removing entries from the end is caught by the head file
(``audit.head`` in the data directory), which records the latest hash and count. A
retention sweep removes the oldest entries and records their last hash as the new anchor in
an ``audit.sweep`` entry, so the chain still verifies from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select

from attune.storage.tables import audit_log

GENESIS = "0" * 64
HEAD_FILE = "audit.head"
_PG_AUDIT_LOCK = 0x41756454


def entry_hash(prev_hash: str, at: float, actor: str, action: str, target: str, details: str) -> str:
    """The chained hash of one entry."""
    canonical = orjson.dumps(
        {"prev": prev_hash, "at": repr(float(at)), "actor": actor, "action": action, "target": target,
         "details": details},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :meth:`AuditLog.verify`."""

    ok: bool
    entries: int
    problems: list[str]


class AuditLog:
    """Appends and verifies audit entries."""

    def __init__(self, engine: Engine, head_path: Path | None = None) -> None:
        self.engine = engine
        self.head_path = head_path
        self._lock = threading.Lock()

    def append(self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None) -> str:
        """Record one entry; return its hash. Serialized across threads and processes."""
        detail_text = orjson.dumps(details or {}, option=orjson.OPT_SORT_KEYS).decode()
        # PostgreSQL text cannot hold NUL, and a raw id in a URL can: store it visibly escaped.
        actor, action, target = (_printable(v) for v in (actor, action, target))
        with self._lock, self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_AUDIT_LOCK})")
            else:
                # Take SQLite's write lock before reading the chain head.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            last = conn.execute(select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).scalar()
            prev = last or self._anchor_start()
            at = time.time()
            digest = entry_hash(prev, at, actor, action, target[:300], detail_text)
            conn.execute(
                insert(audit_log).values(at=at, actor=actor[:200], action=action[:64], target=target[:300],
                                         details=detail_text, prev_hash=prev, hash=digest)
            )
            count = conn.execute(select(func.count()).select_from(audit_log)).scalar()
        self._write_head(digest, int(count or 0))
        return digest

    def _anchor_start(self) -> str:
        return GENESIS

    def _write_head(self, digest: str, count: int) -> None:
        if self.head_path is None:
            return
        tmp = self.head_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"head": digest, "count": count}))
        os.replace(tmp, self.head_path)

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Entries, oldest first."""
        query = select(audit_log).order_by(audit_log.c.seq)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def verify(self) -> VerifyResult:
        """Walk the chain; report every edited, removed or re-ordered entry."""
        rows = self.entries()
        problems: list[str] = []
        anchors = {GENESIS}
        for row in rows:
            if row["action"] == "audit.sweep":
                anchor = json.loads(row["details"]).get("anchor")
                if anchor:
                    anchors.add(anchor)
        prev: str | None = None
        for index, row in enumerate(rows):
            expected_prev = prev if prev is not None else None
            if index == 0:
                if row["prev_hash"] not in anchors:
                    problems.append(f"entry {row['seq']}: the chain does not start at a known anchor (entries removed)")
            elif row["prev_hash"] != expected_prev:
                problems.append(f"entry {row['seq']}: does not follow the previous entry (an entry was removed or edited)")
            recomputed = entry_hash(row["prev_hash"], row["at"], row["actor"], row["action"], row["target"],
                                    row["details"])
            if recomputed != row["hash"]:
                problems.append(f"entry {row['seq']}: content does not match its hash (edited)")
            prev = row["hash"]
        if self.head_path is not None and self.head_path.exists():
            head = json.loads(self.head_path.read_text())
            last = rows[-1]["hash"] if rows else None
            if head.get("head") != last:
                problems.append("the newest entries are missing or changed (the head file names another hash)")
        return VerifyResult(not problems, len(rows), problems)

    def sweep(self, older_than: float, actor: str = "sweeper") -> int:
        """Delete entries before ``older_than`` (epoch seconds), anchoring the chain; return how many."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.at < older_than).order_by(audit_log.c.seq)
            ).all()
            if not rows:
                return 0
            last_seq, anchor = rows[-1]
            conn.execute(delete(audit_log).where(audit_log.c.seq <= last_seq))
        self.append(actor, "audit.sweep", "audit_log", {"deleted": len(rows), "anchor": anchor})
        return len(rows)


def _printable(text: str) -> str:
    """``text`` with NUL written as ``\\x00`` (every store can hold it, and it stays visible)."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text
