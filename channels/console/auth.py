"""Who may use the console: operators with a session cookie, nobody else.

Anonymous requests get 401; requests that carry other credentials (a visitor token, an
adapter API key) but no operator session get 403, because those credentials are valid
elsewhere and never open the console. Pages answer with the login form and the same status;
data endpoints answer JSON `{"error", "detail"}` like the rest of the API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from threadline.channels.console.errors import ConsoleError
from threadline.channels.console.operators import OperatorAccounts

COOKIE = "threadline_console"
COOKIE_PATH = "/console"


class DeniedError(ConsoleError):
    """Raised when the console refuses a request; `mount` installs the handler that renders
    it (the login form for pages, JSON for data endpoints)."""

    def __init__(self, status: int, error: str, detail: str, page: bool) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.page = page


def other_credentials(request: Request) -> bool:
    """True when the request carries credentials of another kind (bearer token, API key)."""
    return bool(
        request.headers.get("authorization")
        or request.headers.get("x-api-key")
        or request.query_params.get("token")
        or request.query_params.get("access_token")
    )


def operator_of(request: Request, accounts: OperatorAccounts) -> str | None:
    return accounts.resolve(request.cookies.get(COOKIE))


def deny(request: Request, *, page: bool) -> DeniedError:
    if other_credentials(request):
        return DeniedError(
            403,
            "forbidden",
            "the console needs an operator login; visitor tokens and API keys do not open it",
            page,
        )
    return DeniedError(401, "unauthenticated", "operator login required", page)


def same_origin(request: Request) -> bool:
    """For state-changing requests: a browser sends Origin; it must be this server. Together
    with SameSite=Strict cookies and JSON-only bodies this stops cross-site request forgery."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host
