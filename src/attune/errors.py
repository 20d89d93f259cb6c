"""One error root for the whole domain.

Domain code raises subclasses of :class:`AttuneError`; the API maps them to
``application/problem+json`` answers with the status carried here, and the CLI
prints their message without a traceback.
"""

from __future__ import annotations


class AttuneError(Exception):
    """Base of every error Attune raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(AttuneError):
    """The request (or file) cannot be read at all."""

    status = 400
    title = "Bad request"


class ValidationFailed(AttuneError):
    """The request was read but its content is invalid."""

    status = 422
    title = "Validation failed"


class PayloadTooLarge(AttuneError):
    """A body or batch exceeds a configured limit."""

    status = 413
    title = "Payload too large"


class NotFound(AttuneError):
    """The addressed resource does not exist."""

    status = 404
    title = "Not found"


class Unauthorized(AttuneError):
    """No valid credentials were presented."""

    status = 401
    title = "Unauthorized"


class Forbidden(AttuneError):
    """The credentials lack the scope the route needs."""

    status = 403
    title = "Forbidden"


class ConfigError(AttuneError):
    """The configuration is invalid or unsafe."""

    status = 500
    title = "Configuration error"


class Unavailable(AttuneError):
    """A part the request needs is down or restarting; retrying shortly is safe."""

    status = 503
    title = "Service unavailable"
