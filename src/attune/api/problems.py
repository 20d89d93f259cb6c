"""Every error leaves as ``application/problem+json`` (RFC 9457), and the OpenAPI schema says so.

:func:`install` registers the exception handlers and rewrites the published schema so that
each operation documents the problem answers it can give:

- 401, 403 and 429 where a dependency from :mod:`attune.api.auth` guards the route;
- 400, 413 and 422 where the operation takes a request body (malformed, too large, refused);
- 422 where FastAPI validates path, query, header or cookie parameters (its own
  ``HTTPValidationError`` entry is replaced: the handler below answers a problem, not that
  shape), and 404 where the path has parameters (an id with an encoded ``/`` never matches
  the route, whatever the handler does);
- whatever a route declares itself, e.g. ``responses=problem_responses(404, 409)``.

Routes added later are covered without changes, since the rules read each route's own
dependencies and documented inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from attune.api.models import ProblemOut
from attune.api.responses import JSONResponse
from attune.errors import AttuneError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemOut"}

#: What each documented problem status means, for the schema's descriptions.
DESCRIPTIONS = {
    400: "Malformed request (the body is not JSON, or not valid gzip)",
    401: "No API key, or an unknown, revoked or expired one",
    403: "The key lacks the scope this route needs",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "The body or batch is too large",
    422: "The request is well-formed but refused; 'errors' names each field and why",
    429: "The key's rate limit is exceeded; retry after 'Retry-After' seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem answers with these statuses."""
    return {status: _problem_doc(status) for status in statuses}


def _problem_doc(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM: {"schema": dict(_PROBLEM_REF)}},
    }


def problem(
    status: int, title: str, detail: str, errors: list[str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that map errors to problem answers, and document them in the schema."""
    _document(app)

    @app.exception_handler(AttuneError)
    async def _attune_error(_request: Request, exc: AttuneError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.message, exc.errors)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="attune"'
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            errors.append(f"{loc}: {err.get('msg', 'invalid')}")
        return problem(422, "Validation failed", "the request does not match the schema", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail), str(exc.detail))
        # Keep what the router said, e.g. the Allow header of a 405 (RFC 9110 requires it).
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def _document(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the problem answers of every operation (built once, on demand)."""
    build = app.openapi  # FastAPI's own generator, bound to the app

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            add_problem_responses(schema, _api_routes(app))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _api_routes(app: FastAPI) -> list[Any]:
    """Every API route as mounted (FastAPI wraps included routers; contexts carry the full path)."""
    return [ctx for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def add_problem_responses(schema: dict[str, Any], routes: list[Any]) -> None:
    """Add the problem answers each route can give to its operations in ``schema`` (in place)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ProblemOut"] = (
        ProblemOut.model_json_schema()
    )
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in route.methods:
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(route, operation) | _declared_errors(responses)):
                entry = responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "Error")})
                # Replaces FastAPI's application/json HTTPValidationError: the answer is a problem.
                entry["content"] = {PROBLEM: {"schema": dict(_PROBLEM_REF)}}
    _drop_unused_validation_schemas(schema)


def _statuses(route: Any, operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set()
    if _guarded(route.dependant):
        statuses |= {401, 403, 429}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if _validated_parameters(route.dependant):
        statuses.add(422)  # FastAPI validates them; the handler below answers the problem
    if "{" in route.path_format:
        # Unknown resources aside, an id holding an encoded '/' never matches the route: 404.
        statuses.add(404)
    return statuses


def _declared_errors(responses: dict[str, Any]) -> set[int]:
    """4xx statuses a route declared itself (possibly without content)."""
    return {int(code) for code in responses if code.isdigit() and 400 <= int(code) < 500}


def _validated_parameters(dependant: Dependant) -> bool:
    """Whether FastAPI validates parameters of this route (parameters only documented by hand are not)."""
    for dep in (dependant, *_walk(dependant)):
        if dep.path_params or dep.query_params or dep.header_params or dep.cookie_params:
            return True
    return False


def _guarded(dependant: Dependant) -> bool:
    """Whether an API-key check guards this route.

    That is a dependency from :mod:`attune.api.auth`, or one of a router's own that calls
    :func:`attune.api.auth.authenticate` directly (e.g. to stay on the event loop).
    """
    return any(_is_key_check(dep.call) for dep in _walk(dependant))


def _is_key_check(call: Any) -> bool:
    from attune.api import auth  # here, not at import: auth's own imports need not know this module

    if getattr(call, "__module__", None) == auth.__name__:
        return True
    code, scope = getattr(call, "__code__", None), getattr(call, "__globals__", {})
    return code is not None and any(scope.get(name) is auth.authenticate for name in code.co_names)


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _walk(dep)


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    # FastAPI's HTTPValidationError is never answered; keep it out of the published schema.
    components = schema.get("components", {}).get("schemas", {})
    text = repr(schema.get("paths", {}))
    if "HTTPValidationError" not in text:
        components.pop("HTTPValidationError", None)
        if "ValidationError" not in repr({k: v for k, v in components.items() if k != "ValidationError"}):
            components.pop("ValidationError", None)
