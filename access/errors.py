"""One error hierarchy for channels; `threadline.channels.http.errors` maps it to HTTP statuses."""

from __future__ import annotations


class ChannelError(Exception):
    """Root of every error channels raise on purpose."""


class Unauthenticated(ChannelError):
    """No credentials, or credentials that do not verify (bad, expired, revoked)."""


class Forbidden(ChannelError):
    """Valid credentials that do not grant access to this resource."""


class NotFound(ChannelError):
    """The resource does not exist, or the caller may not know that it exists."""


class RateLimited(ChannelError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_s:.1f}s")
        self.retry_after_s = retry_after_s


class InvalidInput(ChannelError):
    """Input that passed the schema but is still not acceptable."""


class ServiceUnavailable(ChannelError):
    """A collaborator the request needs is not configured or not reachable."""
