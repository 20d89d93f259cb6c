"""Per-key rate limits: token buckets in memory, answered with 429 and ``Retry-After``.

Limits come from ``[privacy] rate_limits``: an entry named after a key id applies to that
key; otherwise the entry of the key's broadest scope (admin, then read, then ingest). Keys
without a matching entry are not limited. Buckets live in this process (one per key id).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping

from attune.auth.keys import ApiKey
from attune.settings import RateLimit

_SCOPE_ORDER = ("admin", "read", "ingest")


class TokenBucketLimiter:
    """Token buckets by key id."""

    def __init__(self, limits: Mapping[str, RateLimit], clock=time.monotonic) -> None:  # noqa: ANN001
        self.limits = dict(limits)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill)
        self._lock = threading.Lock()

    def limit_for(self, key: ApiKey) -> RateLimit | None:
        """The limit that applies to ``key``, or ``None``."""
        if key.key_id in self.limits:
            return self.limits[key.key_id]
        for scope in _SCOPE_ORDER:
            if scope in key.scopes and scope in self.limits:
                return self.limits[scope]
        return None

    def take(self, key: ApiKey) -> float:
        """Spend one token; return 0 when allowed, else the seconds until one is available."""
        limit = self.limit_for(key)
        if limit is None:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key.key_id, (limit.burst, now))
            tokens = min(limit.burst, tokens + (now - last) * limit.rate)
            if tokens >= 1.0:
                self._buckets[key.key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key.key_id] = (tokens, now)
            return (1.0 - tokens) / limit.rate


class RateLimitMiddleware:
    """ASGI middleware: requests carrying a rate-limited key beyond its budget get 429."""

    def __init__(self, app, limiter: TokenBucketLimiter) -> None:  # noqa: ANN001 - ASGI app
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http" or not self.limiter.limits:
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        from attune.api.auth import presented_key

        request = Request(scope)
        secret = presented_key(request)
        key = request.app.state.runtime.keys.verify(secret) if secret else None
        wait = self.limiter.take(key) if key is not None else 0.0
        if wait > 0:
            from attune.api.problems import problem

            retry = max(1, math.ceil(wait))
            response = problem(429, "Too many requests", f"rate limit of this key exceeded; retry in {retry}s",
                               retry_after=retry)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
