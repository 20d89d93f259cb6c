"""Server-side enrichment: device from the user agent, and sessions when the client sends none."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache

from ua_parser import parse as parse_ua

from attune.events.model import Event

_blake2b = hashlib.blake2b  # looked up once: a new session costs one hash
_DEVICE_MEMO_SIZE = 4096
_TABLET_HINTS = ("ipad", "tablet", "kindle", "silk", "playbook")
_BOT_HINTS = ("bot", "crawler", "spider", "slurp", "headless")


@lru_cache(maxsize=8192)
def device_from_user_agent(user_agent: str) -> dict[str, str]:
    """Device type (mobile, tablet, desktop, bot), OS and browser parsed from a user agent."""
    lowered = user_agent.lower()
    result = parse_ua(user_agent)
    os_family = result.os.family if result.os else "Other"
    browser = result.user_agent.family if result.user_agent else "Other"
    device_family = (result.device.family if result.device else "Other") or "Other"
    # Hints in the whole string only count when no real device was recognized: phone
    # names such as "CUBOT X20" contain "bot" too.
    text_hint = device_family == "Other" and any(hint in lowered for hint in _BOT_HINTS)
    if device_family == "Spider" or text_hint or any(hint in browser.lower() for hint in _BOT_HINTS):
        kind = "bot"
    elif any(hint in lowered for hint in _TABLET_HINTS) or (
        os_family == "Android" and "mobile" not in lowered
    ):
        kind = "tablet"
    elif "mobi" in lowered or os_family in {"iOS", "Android", "Windows Phone"}:
        kind = "mobile"
    elif os_family in {"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Fedora"}:
        kind = "desktop"
    else:
        kind = "other"
    return {"type": kind, "os": os_family, "browser": browser}


class SessionTracker:
    """Assigns session ids: a new session starts after ``timeout`` seconds of inactivity.

    Keyed by the person (user id, else anonymous id). The id is derived from the person and
    the session's start time, so two processes that see the same activity agree on it. Memory
    is bounded: the least recently active people are forgotten first.
    """

    def __init__(self, timeout: float, max_people: int = 200_000) -> None:
        self.timeout = timeout
        self.max_people = max_people
        self._last: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def assign(self, person: str, ts: float) -> str:
        """The session id for activity of ``person`` at ``ts``."""
        # acquire/try/finally rather than ``with``: the same guarantee at half the cost.
        self._lock.acquire()
        try:
            return self._assign(person, ts)
        finally:
            self._lock.release()

    def assign_many(self, activity: list[tuple[str, float]]) -> list[str]:
        """Session ids for (person, ts) pairs, in order, under one hold of the lock.

        Ingest threads enriching batches side by side queued for the lock once per event
        (a convoy: a holder losing the GIL kept everyone waiting); once per batch they don't.
        """
        assign = self._assign
        self._lock.acquire()
        try:
            return [assign(person, ts) for person, ts in activity]
        finally:
            self._lock.release()

    def _assign(self, person: str, ts: float) -> str:
        last_seen = self._last
        current = last_seen.get(person)
        if current is not None and abs(ts - current[1]) <= self.timeout:
            session_id = current[0]
            if ts > current[1]:  # else the entry stays as it is
                last_seen[person] = (session_id, ts)
        else:
            session_id = _blake2b(f"{person}|{ts:.3f}".encode(), digest_size=10).hexdigest()
            last_seen[person] = (session_id, ts)
        last_seen.move_to_end(person)
        if len(last_seen) > self.max_people:
            last_seen.popitem(last=False)
        return session_id


class Enricher:
    """Adds what the server knows to a normalized event."""

    def __init__(self, sessions: SessionTracker) -> None:
        self.sessions = sessions
        # User agent -> device_from_user_agent(user_agent[:1024]). A plain dict in front of
        # the LRU cache: a hit costs a third as much, and there are few distinct agents.
        self._devices: dict[str, dict[str, str]] = {}

    def enrich(self, event: Event) -> Event:
        """Fill device fields from the user agent and a session id when absent."""
        self._device(event)
        if event.session_id is None:
            event.session_id = self.sessions.assign(event.user_id or event.anonymous_id or "", event.timestamp)
        return event

    def enrich_many(self, events: list[Event]) -> list[Event]:
        """:meth:`enrich` for a batch, taking the session tracker's lock once."""
        pending = []
        for event in events:
            self._device(event)
            if event.session_id is None:
                pending.append(event)
        if pending:
            ids = self.sessions.assign_many(
                [(event.user_id or event.anonymous_id or "", event.timestamp) for event in pending]
            )
            for event, session_id in zip(pending, ids, strict=True):
                event.session_id = session_id
        return events

    def _device(self, event: Event) -> None:
        context = event.context
        user_agent = context.get("user_agent")
        if user_agent:
            parsed = self._devices.get(user_agent)
            if parsed is None:
                parsed = device_from_user_agent(user_agent[:1024])
                if len(self._devices) >= _DEVICE_MEMO_SIZE:
                    self._devices.clear()  # bounded; other threads at worst parse again
                self._devices[user_agent] = parsed
            device = context.get("device")
            # Fields the client sent win over what the user agent suggests. Always a new
            # dict: the parsed one is shared through the cache.
            context["device"] = {**parsed, **device} if device else parsed.copy()
