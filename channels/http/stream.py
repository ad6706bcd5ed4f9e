"""`GET /v1/conversations/{id}/stream`: the conversation's events as Server-Sent Events.

Each SSE `id` is the event's position, so a reconnecting client sends `Last-Event-ID` and
resumes exactly after the last event it saw. The stream registers with the live hub before it
reads, then always reads from the ledger; a notification only says "read again", so nothing
appended by any code path (this process, or another replica through an attached feed) is
skipped or sent twice.

The caller's credential is checked again before every read, not only when the stream opens:
a key revoked on any replica (seen here within the key verifier's 1 s cache) or an expired
visitor token ends the stream before it carries anything more (issue 18). The client's
reconnect is then refused with 401.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from threadline.access.keys import looks_like_key
from threadline.access.policy import Principal, TenantDirectory, authorize
from threadline.channels.http.conversations import ConversationId
from threadline.channels.http.deps import (
    Credentials,
    DirectoryDep,
    RequiredPrincipal,
    ServicesDep,
)
from threadline.channels.http.errors import responses
from threadline.channels.services import Services
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.store import MAX_POSITION

router = APIRouter(prefix="/v1/conversations", tags=["stream"])

_BATCH = 200


def _frame(position: int, event_type: str, payload: str) -> bytes:
    return f"id: {position}\nevent: {event_type}\ndata: {payload}\n\n".encode()


def _still_allowed(services: Services, token: str) -> Callable[[], bool]:
    def allowed() -> bool:
        try:
            if looks_like_key(token):
                assert services.key_verifier is not None
                services.key_verifier.verify(token)
            else:
                services.tokens.verify(token)
        except (UnauthenticatedError, ServiceUnavailableError):
            return False  # the key store down: fail closed, the client retries
        return True

    return allowed


def _read(
    services: Services, conversation_id: str, after: int, allowed: Callable[[], bool]
) -> list[RecordedEvent] | None:
    """One thread-pool hop for both the credential check and the read."""
    if not allowed():
        return None
    return services.ledger.read(conversation_id, after, None, _BATCH)


async def _events(
    services: Services,
    conversation_id: str,
    after: int,
    allowed: Callable[[], bool],
) -> AsyncIterator[bytes]:
    hub = services.hub
    waiter = hub.watch(conversation_id)
    keepalive = services.settings.stream_keepalive_s
    try:
        yield b"retry: 2000\n\n"
        while True:
            waiter.clear()
            events = await run_in_threadpool(_read, services, conversation_id, after, allowed)
            if events is None:
                return
            for event in events:
                yield _frame(event.position, event.type, json.dumps(event.to_json()))
                after = event.position
            if len(events) == _BATCH:
                continue
            try:
                await asyncio.wait_for(waiter.wait(), timeout=keepalive)
            except TimeoutError:
                yield b": keepalive\n\n"
    finally:
        hub.unwatch(conversation_id, waiter)


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise InvalidInputError("Last-Event-ID must be an event position (integer)") from None
        if not 0 <= value <= MAX_POSITION:
            raise InvalidInputError(f"Last-Event-ID must be an event position (0..{MAX_POSITION})")
        return value
    return after or 0


@router.get(
    "/{conversation_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "text/event-stream; `id` is the position, `event` the type, "
            "`data` the recorded event as JSON",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(401, 403, 404, 422, 429),
    },
    summary="Live events (SSE) with Last-Event-ID resume",
)
async def stream(
    conversation_id: ConversationId,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
    credentials: Credentials,
    after: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    start = _resume_point(last_event_id, after)
    await run_in_threadpool(_authorize, principal, conversation_id, directory)
    assert credentials is not None  # a principal was required
    allowed = _still_allowed(services, credentials.credentials)
    return StreamingResponse(
        _events(services, conversation_id, start, allowed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _authorize(principal: Principal, conversation_id: str, directory: TenantDirectory) -> None:
    authorize(principal, conversation_id, directory)
