"""A light ASGI middleware that times every request by route template."""

from __future__ import annotations

import time

from attune.observability import metrics


class MetricsMiddleware:
    """Records ``attune_http_request_seconds`` without the overhead of BaseHTTPMiddleware."""

    def __init__(self, app) -> None:  # noqa: ANN001 - ASGI app
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI signature
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.REQUEST_SECONDS.labels(scope["method"], path, str(status["code"])).observe(
                time.perf_counter() - started
            )
