"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from attune import __version__
from attune.api import problems
from attune.api.middleware import MetricsMiddleware
from attune.api.responses import JSONResponse
from attune.api.routes import (
    events,
    items,
    models,
    ops,
    pixel,
    privacy,
    recommendations,
    segment,
    segments,
    tracker,
    users,
)
from attune.auth.ratelimit import RateLimitMiddleware, TokenBucketLimiter
from attune.runtime import Runtime


def create_app(runtime: Runtime, *, run_consumers: bool = True) -> FastAPI:
    """Build the app over ``runtime``; consumers run in the background while it serves."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_consumers:
            runtime.pipeline.start()
        try:
            yield
        finally:
            if run_consumers:
                runtime.pipeline.stop()

    app = FastAPI(
        title="Attune",
        version=__version__,
        description="Self-hosted, real-time personalization: events, profiles, segments, recommendations.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    problems.install(app)
    for module in (events, segment, pixel, items, users, recommendations, segments, privacy, models, ops, tracker):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, in_flight=runtime.pipeline.in_flight)
    app.add_middleware(RateLimitMiddleware, limiter=TokenBucketLimiter(runtime.settings.privacy.rate_limits))
    if runtime.settings.security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=runtime.settings.security.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        )
    return app
