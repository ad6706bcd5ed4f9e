"""One error hierarchy for the console; the routes map these to HTTP statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class ConsoleError(ThreadlineError):
    """Root of every error the console raises on purpose."""


class InvalidOperatorError(ConsoleError):
    """An operator name or password does not meet the rules."""


class OperatorExistsError(ConsoleError):
    """An operator of that name already exists."""


class OperatorNotFoundError(ConsoleError):
    """No operator of that name."""


class AuthenticationFailedError(ConsoleError):
    """Wrong name or password (deliberately not saying which)."""


class TooManyAttemptsError(ConsoleError):
    """Too many failed logins for this name or address; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class OperatorStoreUnavailableError(ConsoleError):
    """The operator store's URL is not usable."""
