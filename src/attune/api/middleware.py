"""A light ASGI middleware that times every request by route template and counts those in flight."""

from __future__ import annotations

import time

from attune.observability import metrics
from attune.observability.inflight import RequestsInFlight


class MetricsMiddleware:
    """Records ``attune_http_request_seconds`` without the overhead of BaseHTTPMiddleware.

    With ``in_flight``, it also counts the requests being answered (consumer lanes wait for
    a quiet moment before each step, see :class:`attune.consumers.pipeline.Pacing`).
    """

    def __init__(self, app, in_flight: RequestsInFlight | None = None) -> None:  # noqa: ANN001 - ASGI app
        self.app = app
        self.in_flight = in_flight

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

        in_flight = self.in_flight
        if in_flight is not None:
            in_flight.enter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if in_flight is not None:
                in_flight.leave()
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.REQUEST_SECONDS.labels(scope["method"], path, str(status["code"])).observe(
                time.perf_counter() - started
            )
