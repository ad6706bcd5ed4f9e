"""The API edge: every error becomes a JSON body `{"error": code, "detail": message}`.

Every `ThreadlineError` is mapped here (the one status table) and nowhere else. Unexpected
exceptions are logged (without request headers or bodies, which may carry secrets) and
answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from threadline.access.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from threadline.handoff.errors import (
    AgentError,
    ConfigurationError,
    HandoffError,
    HandoffNotAllowedError,
    TokenError,
    UnknownConversationError,
)
from threadline.ledger.errors import (
    ConcurrencyConflictError,
    ConversationNotFoundError,
    IdempotencyConflictError,
    IntegrityViolationError,
    InvalidEventError,
    StoreUnavailableError,
    ThreadlineError,
)

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    detail: str


# (exception class, status, code); the first match wins, so subclasses come first.
_MAPPING: list[tuple[type[Exception], int, str]] = [
    (UnauthenticatedError, 401, "unauthenticated"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (ConversationNotFoundError, 404, "not_found"),
    (RateLimitedError, 429, "rate_limited"),
    (InvalidInputError, 422, "invalid_input"),
    (InvalidEventError, 422, "invalid_event"),
    (ConcurrencyConflictError, 409, "version_conflict"),
    (IdempotencyConflictError, 409, "idempotency_conflict"),
    (ServiceUnavailableError, 503, "unavailable"),
    (StoreUnavailableError, 503, "store_unavailable"),
    (IntegrityViolationError, 500, "integrity_violation"),
    (UnknownConversationError, 404, "not_found"),
    (HandoffNotAllowedError, 409, "handoff_not_allowed"),
    (TokenError, 401, "unauthenticated"),
    (ConfigurationError, 503, "misconfigured"),
    (AgentError, 502, "agent_failed"),
    (HandoffError, 409, "handoff_error"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _mapped(exc: Exception) -> JSONResponse:
    for cls, status, code in _MAPPING:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            extra: dict[str, Any] = {}
            if isinstance(exc, UnauthenticatedError | TokenError):
                headers["WWW-Authenticate"] = "Bearer"
            if isinstance(exc, RateLimitedError):
                headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
            if isinstance(exc, ConcurrencyConflictError):
                extra = {"expected_version": exc.expected, "actual_version": exc.actual}
            if status >= 500:
                log.error("%s: %s", type(exc).__name__, exc)
            return error_response(status, code, str(exc) or code, headers or None, **extra)
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal", "internal server error")


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    parts = []
    for err in exc.errors()[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        errors.append({"loc": loc, "msg": msg, "type": str(err.get("type", ""))})
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request", errors


def install(app: FastAPI) -> None:
    async def on_threadline(_: Request, exc: Exception) -> JSONResponse:
        return _mapped(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _validation_detail(exc)
        return error_response(422, "invalid_request", detail, errors=errors)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _mapped(exc)

    app.add_exception_handler(ThreadlineError, on_threadline)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorBody, "description": _HTTP_CODES.get(status, "error")}
        for status in statuses
    }
