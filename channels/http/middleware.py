"""Pure ASGI middleware: request body size limit, and request counting for `/metrics`.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched and the cost
per request stays a few microseconds.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.http.errors import PayloadTooLarge, error_response
from channels.http.metrics import HttpMetrics


class BodyLimit:
    """Rejects bodies over `max_bytes`: at once when Content-Length says so, otherwise as
    soon as the streamed body passes the limit (raised inside the route, mapped to 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    status, code = (413, "payload_too_large")
                    if declared < 0:
                        status, code = (400, "bad_request")
                    response = error_response(
                        status, code, f"request body must be at most {self.max_bytes} bytes"
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"request body must be at most {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


class CountRequests:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
