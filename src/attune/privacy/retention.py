"""Retention: how long each data class is kept, enforced by a sweeper.

``[privacy] retention_days`` per class:

* ``raw_events`` — events older than this leave the log (only those every consumer has
  already handled, so derived state is unaffected);
* ``inactive_profiles`` — people not seen for this long are erased completely (as by
  ``DELETE /v1/users/{id}``, including their data keys);
* ``audit`` — audit entries older than this are removed, the chain re-anchored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from attune.log.gate import write_gate
from attune.storage.tables import consumer_offsets, events, profiles

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What a sweep removed, per data class."""

    removed: dict[str, int] = field(default_factory=dict)


def sweep(runtime, privacy, now: float | None = None) -> SweepReport:
    """Apply every configured retention period once."""
    now = time.time() if now is None else now
    days = privacy.settings.privacy.retention_days
    report = SweepReport()
    if "raw_events" in days:
        cutoff = now - days["raw_events"] * 86400
        with write_gate(runtime.engine).hold(urgent=False), runtime.engine.begin() as conn:
            if runtime.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            handled = conn.execute(select(func.min(consumer_offsets.c.position))).scalar() or 0
            report.removed["raw_events"] = conn.execute(
                delete(events).where(events.c.ts < cutoff, events.c.offset <= handled)
            ).rowcount
    if "inactive_profiles" in days:
        cutoff = now - days["inactive_profiles"] * 86400
        with runtime.engine.connect() as conn:
            stale = conn.execute(select(profiles.c.user_key).where(profiles.c.last_seen < cutoff)).scalars().all()
        count = 0
        for key in stale:
            raw = privacy.subject_keys.display_id(key)
            try:
                privacy.erasure.erase(raw)
                count += 1
            except Exception:
                log.exception("retention sweep: erasing an inactive person failed; continuing")
        report.removed["inactive_profiles"] = count
    if "audit" in days:
        report.removed["audit"] = privacy.audit.sweep(now - days["audit"] * 86400)
    privacy.erasure.compact()
    privacy.audit.append("sweeper", "retention.sweep", "", report.removed)
    return report
