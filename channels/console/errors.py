"""One error hierarchy for the console; the routes map these to HTTP statuses."""

from __future__ import annotations


class ConsoleError(Exception):
    """Root of every error the console raises on purpose."""


class InvalidOperator(ConsoleError):
    """An operator name or password does not meet the rules."""


class OperatorExists(ConsoleError):
    """An operator of that name already exists."""


class OperatorNotFound(ConsoleError):
    """No operator of that name."""


class AuthenticationFailed(ConsoleError):
    """Wrong name or password (deliberately not saying which)."""


class TooManyAttempts(ConsoleError):
    """Too many failed logins for this name or address; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class OperatorStoreUnavailable(ConsoleError):
    """The operator store's URL is not usable."""
