"""Personalization consent answered from memory, for the serving path.

Serving asks :meth:`ConsentView.allows_personalization` on every request, so the answer must
not cost a query. The view holds the decided state of one purpose for every subject that
decided it (one ``consent_current`` scan, people who decided nothing take no memory) and
answers the rest with the purpose's default.

Staying current:

* changes made in this process go through :class:`ConsentService`, which bumps its
  invalidation counter on every write (PUT consent, consent events, erasure). The view
  compares that counter (an attribute read) on every request and reloads at once when it
  moved, so a withdrawal takes effect on the very next request;
* changes made by other processes are found by a background poll (every ``poll_seconds``)
  of ``consent_history``'s highest sequence number and row count; when either moved, the
  poll reloads. Requests never wait for it.

Serving passes canonical subject keys, and the canonical person's own decision is what
:meth:`ConsentService.allows` resolves for them, so both answer alike.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import func, select

from attune.privacy.consent import ConsentService
from attune.storage.tables import consent_current, consent_history

log = logging.getLogger(__name__)

PERSONALIZATION = "personalization"


class ConsentView:
    """The decided state of one purpose per subject, in memory (see the module docstring)."""

    def __init__(self, consent: ConsentService, purpose: str = PERSONALIZATION, poll_seconds: float = 2.0) -> None:
        self.consent = consent
        self.purpose = purpose
        self.poll_seconds = poll_seconds
        self._states: dict[str, str] = {}
        self._seen_generation: Any = object()  # never equal: the first request loads
        self._seen_mark: tuple[Any, Any] | None = None
        self._polled_at = time.monotonic()
        self._reloading = threading.Lock()
        self._polling = threading.Lock()

    # -- answers -----------------------------------------------------------------
    def allows_personalization(self, user_key: str) -> bool:
        """Whether ``user_key`` (a canonical subject key) may get personalized answers."""
        return self.allows(user_key)

    def allows(self, subject_key: str) -> bool:
        """Whether the view's purpose is granted to ``subject_key``."""
        if self.purpose not in self.consent.settings.purposes:
            return True  # the installation does not ask for this purpose
        self._follow()
        state = self._states.get(subject_key)
        return (state or self.consent.default(self.purpose)) == "granted"

    def __len__(self) -> int:
        return len(self._states)

    # -- keeping current -----------------------------------------------------------
    def _generation(self) -> Any:
        return getattr(self.consent, "generation", None)  # bumped on every record/forget/invalidate

    def _follow(self) -> None:
        if self._generation() != self._seen_generation:
            self.reload()
        elif time.monotonic() - self._polled_at >= self.poll_seconds and self._polling.acquire(blocking=False):
            self._polled_at = time.monotonic()
            threading.Thread(target=self._poll_then_release, daemon=True, name="consent-view").start()

    def reload(self) -> int:
        """Read every subject's decided state of the purpose again; return how many decided."""
        with self._reloading:
            generation = self._generation()
            engine = self.consent.engine
            with engine.connect() as conn:
                mark = tuple(conn.execute(select(func.max(consent_history.c.seq), func.count())).one())
                rows = conn.execute(
                    select(consent_current.c.subject_key, consent_current.c.state).where(
                        consent_current.c.purpose == self.purpose
                    )
                ).all()
            # Swapped whole: readers see the old mapping or the new one, never a half-built one.
            self._states = {key: state for key, state in rows}
            self._seen_mark = mark
            self._seen_generation = generation
            return len(self._states)

    def poll(self) -> bool:
        """Reload when another process changed consent since the last look; whether it did."""
        with self.consent.engine.connect() as conn:
            mark = tuple(conn.execute(select(func.max(consent_history.c.seq), func.count())).one())
        if mark == self._seen_mark:
            return False
        self.reload()
        return True

    def _poll_then_release(self) -> None:
        try:
            self.poll()
        except Exception:
            log.exception("could not poll consent changes")
        finally:
            self._polling.release()
