"""How many HTTP requests are being answered right now, for background work that can wait."""

from __future__ import annotations

import threading


class RequestsInFlight:
    """Counts requests between their arrival and their last byte sent.

    Consumers share the process (and its GIL) with the HTTP server. An append wakes them at
    once, while its own request is still being answered, so without a pause they competed
    with exactly that request for the interpreter. :meth:`wait_quiet` lets a consumer lane
    start its step between requests instead (bounded, so a busy server never starves it).
    """

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self._quiet = threading.Event()
        self._quiet.set()

    @property
    def count(self) -> int:
        """Requests being answered now."""
        return self._count

    def enter(self) -> None:
        """A request arrived."""
        with self._lock:
            self._count += 1
            self._quiet.clear()

    def leave(self) -> None:
        """A request was answered (or failed)."""
        with self._lock:
            self._count -= 1
            if self._count <= 0:
                self._count = 0
                self._quiet.set()

    def wait_quiet(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no request is in flight; True if none is."""
        return self._quiet.wait(timeout)
