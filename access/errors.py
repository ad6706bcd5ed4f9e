"""Errors a request can end in (who may call, what, with which input).

`threadline.channels.http.errors` maps them to HTTP statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class RequestError(ThreadlineError):
    """Root of every request error (authentication, access, rate limits, input)."""


class UnauthenticatedError(RequestError):
    """No credentials, or credentials that do not verify (bad, expired, revoked)."""


class ForbiddenError(RequestError):
    """Valid credentials that do not grant access to this resource."""


class NotFoundError(RequestError):
    """The resource does not exist, or the caller may not know that it exists."""


class RateLimitedError(RequestError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_s:.1f}s")
        self.retry_after_s = retry_after_s


class InvalidInputError(RequestError):
    """Input that passed the schema but is still not acceptable."""


class ServiceUnavailableError(RequestError):
    """A collaborator the request needs is not configured or not reachable."""
