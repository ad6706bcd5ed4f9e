"""A fast path for `POST /v1/conversations/{id}/events`, the API's hot route.

FastAPI's machinery for that one route (route matching through included routers, dependency
solving, body field validation, response-model validation and serialization) was about half
of the server's CPU per appended event (docs/performance.md). This route, placed first in the
app's router, answers the well-formed requests itself and hands every other one, unchanged,
to the FastAPI route:

- before anything with a side effect it checks, without side effects, what FastAPI would
  check first: the path, a JSON content type, a JSON object body that `AppendEvent` accepts,
  and a `Bearer` credential. If any of these fails, the request (with its body replayed) goes
  to the FastAPI route, which answers with its own errors — the same error JSON as before,
  since it is the same code answering;
- then it does what the route does, with the same functions: `identify` (authentication and
  the rate budget), `require_key`, `append_checked` (event validation, tenant check, one
  ledger call). Their errors propagate to the app's exception handlers as the route's do.

The OpenAPI document still comes from the FastAPI route (this one is not in the schema).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from threadline.access.errors import UnauthenticatedError
from threadline.access.policy import require_key
from threadline.channels.http import conversations
from threadline.channels.http.conversations import append_checked
from threadline.channels.http.deps import identify
from threadline.channels.http.schemas import Appended, AppendEvent

# The path parameter's own constraints (`ConversationId`: 1-64 of [A-Za-z0-9_-]).
_PATH = re.compile(r"/v1/conversations/([A-Za-z0-9_-]{1,64})/events")
_APPENDED = TypeAdapter(Appended)
# A request already handed to the FastAPI route must not match here again.
_HANDED_ON = "threadline.fast_append.handed_on"


class FastAppendRoute(BaseRoute):
    def __init__(self, route: APIRoute) -> None:
        self.route = route  # the FastAPI route: metrics label, and every request not taken
        self.path = route.path

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and _HANDED_ON not in scope
            and (m := _PATH.fullmatch(scope["path"]))
        ):
            return Match.FULL, {"route": self.route, "path_params": {"conversation_id": m[1]}}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body_bytes = await request.body()
        taken = _take(request, body_bytes)
        if taken is None:
            await self._hand_on(scope, body_bytes, receive, send)
            return
        body, credentials = taken
        principal = identify(request, credentials)  # charges the rate budget: no way back
        if principal is None:  # not reached with a Bearer credential; as the route says
            raise UnauthenticatedError("missing credentials: send Authorization: Bearer <token>")
        key = require_key(principal)
        state = request.app.state
        conversation_id = scope["path_params"]["conversation_id"]
        appended = await append_checked(state.services, state.directory, key, conversation_id, body)
        # As FastAPI serializes a response model: JSON bytes straight from pydantic.
        response = Response(
            _APPENDED.dump_json(appended, by_alias=True),
            status_code=200 if appended.duplicate else 201,
            media_type="application/json",
        )
        await response(scope, receive, send)

    async def _hand_on(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        scope[_HANDED_ON] = True
        await scope["router"].app(scope, replay, send)


def _take(request: Request, body_bytes: bytes) -> tuple[AppendEvent, Any] | None:
    """The parsed body and credentials if FastAPI would find nothing wrong before calling
    the route's dependencies and function; None to hand the request on. No side effects."""
    if request.headers.get("content-type", "").lower() != "application/json":
        return None
    authorization = request.headers.get("authorization")
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    try:
        parsed = json.loads(body_bytes)
        if not isinstance(parsed, dict):
            return None
        body = AppendEvent.model_validate(parsed)
    except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
        return None
    return body, HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


def install(app: Any) -> None:
    """Puts the fast route first in `app`'s router, in front of the FastAPI route."""
    app.router.routes.insert(0, FastAppendRoute(_append_route()))


def _append_route() -> APIRoute:
    for route in conversations.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is conversations.append_event:
            return route
    raise LookupError("the append route is missing")
