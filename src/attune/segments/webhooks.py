"""Webhook delivery of segment entries and exits from the durable outbox.

Changes are written to ``segment_outbox`` in the transaction that stores them, so a
restart loses nothing: the dispatcher picks up whatever is still pending. Each delivery is
one POST of a JSON object; a 2xx answer marks it delivered; anything else (an error status,
a timeout, a refused connection) schedules the next attempt after an exponentially growing
wait (``backoff * 2**(attempts-1)``, capped), until ``max_attempts`` marks it failed. Failed
rows stay in the outbox for inspection. Deliveries to one URL keep their order: a URL whose
oldest pending delivery is waiting for a retry gets nothing newer meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import Engine, func, select, update

from attune.settings import SegmentSettings
from attune.storage.tables import segment_outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    """What one :meth:`WebhookDispatcher.deliver_due` pass did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    #: When the next delivery falls due (``None``: nothing pending among the rows looked at).
    next_due: float | None = None


class WebhookDispatcher:
    """Delivers due outbox rows; run in a background thread or called directly (tests)."""

    def __init__(
        self,
        engine: Engine,
        settings: SegmentSettings,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 200,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.batch_size = batch_size
        self._client = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        base = self.settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1)
        return min(base, self.settings.webhook_backoff_max_seconds)

    def deliver_due(self) -> DeliveryReport:
        """Attempt every delivery that is due now; return what happened."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(segment_outbox.c.id, segment_outbox.c.url, segment_outbox.c.payload, segment_outbox.c.attempts,
                       segment_outbox.c.next_attempt_at)
                .where(segment_outbox.c.status == "pending")
                .order_by(segment_outbox.c.id)
                .limit(self.batch_size)
            ).all()
        delivered = retried = failed = 0
        blocked: set[str] = set()  # URLs whose oldest pending delivery is not due: keep order
        heads: list[float] = []  # when each blocked URL's head falls due
        for row_id, url, payload, attempts, due in rows:
            if url in blocked:
                continue
            if due > now:
                blocked.add(url)
                heads.append(due)
                continue
            error = self._post(url, payload)
            attempts += 1
            with self.engine.begin() as conn:
                if error is None:
                    values = {"status": "delivered", "attempts": attempts, "delivered_at": self.clock(), "last_error": None}
                    delivered += 1
                elif attempts >= self.settings.webhook_max_attempts:
                    values = {"status": "failed", "attempts": attempts, "last_error": error}
                    failed += 1
                    log.warning("webhook delivery %s to %s failed for good: %s", row_id, url, error)
                else:
                    values = {
                        "attempts": attempts,
                        "last_error": error,
                        "next_attempt_at": self.clock() + self.backoff(attempts),
                    }
                    retried += 1
                    blocked.add(url)
                    heads.append(values["next_attempt_at"])
                conn.execute(update(segment_outbox).where(segment_outbox.c.id == row_id).values(**values))
        if len(rows) == self.batch_size:
            heads.append(now)  # more rows wait beyond this pass
        return DeliveryReport(delivered, retried, failed, min(heads) if heads else None)

    def pending(self) -> int:
        """How many deliveries are pending."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(segment_outbox).where(segment_outbox.c.status == "pending")
                ).scalar()
                or 0
            )

    def _post(self, url: str, payload: dict) -> str | None:
        """POST one payload; ``None`` on a 2xx answer, else why it failed."""
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "User-Agent": "attune-webhooks"}
        if self.settings.webhook_secret:
            digest = hmac.new(self.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Attune-Signature"] = f"sha256={digest}"
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    # -- background mode -------------------------------------------------------------
    def start(self) -> None:
        """Deliver in a background thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="segment-webhooks", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (pending rows stay in the outbox for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._client.close()

    def _run(self) -> None:
        poll = self.settings.webhook_poll_seconds
        while not self._stop.is_set():
            try:
                due = self.deliver_due().next_due
            except Exception:  # noqa: BLE001 - the store may be briefly unavailable; try again
                log.exception("webhook delivery pass failed")
                due = None
            wait = poll if due is None else min(poll, max(0.0, due - self.clock()))
            self._wake.wait(wait if wait > 0 else 0.01)
            self._wake.clear()
