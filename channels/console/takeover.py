"""A person takes over: presence, the queue, join / message / leave (issue 16).

Every state change is an event in the conversation's stream (OperatorJoined, MessagePosted
with role operator, OperatorLeft), appended at the version the route read: two operators
racing to join cannot both win, the loser gets 409 and nothing is appended for them. Routes
need an operator session, a same-origin request, are rate-limited per operator and see only
the operator's tenant (404 for another tenant's conversation).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.channels.console import auth
from threadline.channels.console.masking import mask_data
from threadline.channels.console.reading import read_conversation
from threadline.channels.console.routes import (
    SECURITY_HEADERS,
    Console,
    ConsoleDep,
    Operator,
    Scope,
    _bad_id,
    _error,
    _mask,
)
from threadline.channels.voice.bridge_events import OperatorJoinedCall, OperatorLeftCall
from threadline.channels.voice.errors import CallNotBridgeableError, InvalidOfferError
from threadline.handoff.human import OPERATOR_CALL
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import ConcurrencyConflictError
from threadline.ledger.events import (
    HandoffDeclined,
    HandoffOffered,
    MessagePosted,
    OperatorJoined,
    OperatorLeft,
)
from threadline.projections.context import build_context
from threadline.projections.human import HumanState, fold_human

router = APIRouter(prefix="/console", include_in_schema=False)
MAX_SDP_CHARS = 20_000
QUEUE_POLL_SECONDS = 1.0


class Presence(BaseModel):
    available: bool


class Join(BaseModel):
    transfer: bool = False  # a supervised transfer takes over from the current holder


class Say(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class CallOffer(BaseModel):
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    type: str = "offer"


def _refuse(request: Request, console: Console, operator: str) -> JSONResponse | None:
    if not auth.same_origin(request):
        return _error(403, "forbidden", "cross-origin operator action refused")
    if console.ledger is None or console.presence is None:
        return _error(503, "unavailable", "taking over conversations is not wired")
    if not console.limiter.allow(operator):
        return _error(429, "rate_limited", "too many operator actions; wait a minute")
    return None


def _summary(state: HumanState, events: list[Any]) -> str:
    """The summary the language model wrote when the person was asked for (recorded as
    HandoffSummaryWritten), else one folded from the context for older conversations."""
    for event in reversed(events):
        if event.type == "HumanRequested":
            break
        if event.type == "HandoffSummaryWritten":
            return str(event.data.model_dump().get("text", ""))
    ctx = build_context(events)
    parts = []
    if ctx.topic is not None:
        parts.append(f"Topic: {ctx.topic.phrase}.")
    open_q = [q.text for q in ctx.open_questions][-2:]
    if open_q:
        parts.append("Open: " + " / ".join(open_q))
    visitor = [t.text for t in ctx.recent_turns if t.role == "visitor"][-1:]
    if visitor and not open_q:
        parts.append(f'Last said: "{visitor[0]}"')
    parts.append(f"Asked for a person ({state.reason}).")
    return " ".join(parts)


def queue_items(console: Console, mask: bool, tenant: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    items = []
    for state in console.queue.waiting(tenant):
        events = read_conversation(console.log, state.conversation_id).events
        assert state.requested_at is not None
        item = {
            "conversation_id": state.conversation_id,
            "requested_at": state.requested_at.isoformat(),
            "wait_seconds": max(0, int((now - state.requested_at).total_seconds())),
            "channel": state.channel,
            "verification_level": state.verification_level,
            "reason": state.reason,
            "summary": _summary(state, events),
        }
        items.append(mask_data(item) | {"conversation_id": state.conversation_id} if mask else item)
    return items


def _queue_body(console: Console, mask: bool, tenant: str | None) -> dict[str, Any]:
    assert console.presence is not None
    return {
        "items": queue_items(console, mask, tenant),
        "operators_online": console.presence.available(tenant),
    }


@router.post("/api/presence")
async def presence(
    request: Request, body: Presence, operator: Operator, tenant: Scope, console: ConsoleDep
) -> Response:
    if refused := _refuse(request, console, operator):
        return refused
    assert console.presence is not None
    # Present for the tenant the operator serves ('*': one who sees every tenant).
    await run_in_threadpool(console.presence.set, operator, tenant or "*", body.available)
    return JSONResponse(
        {"operator": operator, "available": body.available}, headers=SECURITY_HEADERS
    )


@router.get("/api/queue")
def queue(tenant: Scope, console: ConsoleDep, mask: bool | None = None) -> Response:
    if console.presence is None:
        return _error(503, "unavailable", "taking over conversations is not wired")
    body = _queue_body(console, _mask(console, mask), tenant)
    return JSONResponse(body, headers=SECURITY_HEADERS)


def _signed_in(console: Console, session: str | None) -> bool:
    """Whether a stream's session still holds: a logout or expiry on any replica (one
    session table) ends the open streams it authorized, at their next check."""
    return console.accounts.resolve_operator(session) is not None


def _queue_if_signed_in(
    console: Console, session: str | None, masked: bool, tenant: str | None
) -> dict[str, Any] | None:
    return _queue_body(console, masked, tenant) if _signed_in(console, session) else None


def _version_if_signed_in(
    console: Console, session: str | None, conversation_id: str
) -> int | None:
    return console.log.version(conversation_id) if _signed_in(console, session) else None


@router.get("/api/queue/stream")
async def queue_stream(
    request: Request, tenant: Scope, console: ConsoleDep, mask: bool | None = None
) -> Response:
    """SSE: a `queue` event with the whole queue whenever it changes (checked every second;
    the queue index reads only new events from the global log, so a check is cheap). The
    session is checked with each poll: the stream ends once it is logged out anywhere."""
    if console.presence is None:
        return _error(503, "unavailable", "taking over conversations is not wired")
    masked = _mask(console, mask)
    session = request.cookies.get(auth.COOKIE)

    async def frames() -> AsyncIterator[bytes]:
        last = ""
        idle = 0.0
        yield b"retry: 2000\n\n"
        while True:
            body = await run_in_threadpool(_queue_if_signed_in, console, session, masked, tenant)
            if body is None:
                return
            # wait_seconds ticks every second; only a change of membership or data is news.
            key = json.dumps(
                [{k: v for k, v in i.items() if k != "wait_seconds"} for i in body["items"]]
                + [body["operators_online"]]
            )
            if key != last:
                last, idle = key, 0.0
                yield f"event: queue\ndata: {json.dumps(body)}\n\n".encode()
            elif idle >= 15:
                idle = 0.0
                yield b": keepalive\n\n"
            await asyncio.sleep(QUEUE_POLL_SECONDS)
            idle += QUEUE_POLL_SECONDS

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers=SECURITY_HEADERS | {"X-Accel-Buffering": "no"},
    )


def _held_state(
    console: Console, conversation_id: str, tenant: str | None
) -> tuple[HumanState, int] | Response:
    events = read_conversation(console.log, conversation_id).events
    if not events:
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    state = fold_human(events)
    if tenant is not None and state.tenant != tenant:
        # Another tenant's conversation does not exist for this operator.
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    return state, events[-1].position


async def _take_action(
    conversation_id: str,
    request: Request,
    operator: str,
    tenant: str | None,
    console: Console,
    invalid: str | None = None,
) -> tuple[HumanState, int] | Response:
    """What every operator action on a conversation checks first, in this order: the id,
    the body (`invalid`: why it is refused), same origin, wiring, the rate limit, then the
    conversation (404 outside the tenant). Returns its human state and the version to append
    at, or the refusal (the rate limit is spent only by an action that gets that far)."""
    if bad := _bad_id(conversation_id):
        return bad
    if invalid is not None:
        return _error(422, "invalid_input", invalid)
    if refused := _refuse(request, console, operator):
        return refused
    return await run_in_threadpool(_held_state, console, conversation_id, tenant)


def _append(console: Console, conversation_id: str, event: NewEvent, version: int) -> Response:
    assert console.ledger is not None
    try:
        result = console.ledger.append(conversation_id, event, expected_version=version)
    except ConcurrencyConflictError:
        return _error(409, "conflict", "the conversation changed meanwhile; reload and retry")
    return JSONResponse(
        {"position": result.position, "type": event.type}, status_code=201, headers=SECURITY_HEADERS
    )


@router.post("/api/conversations/{conversation_id}/join")
async def join(
    conversation_id: str,
    request: Request,
    operator: Operator,
    tenant: Scope,
    console: ConsoleDep,
    body: Join | None = None,
) -> Response:
    found = await _take_action(conversation_id, request, operator, tenant, console)
    if isinstance(found, Response):
        return found
    state, version = found
    if state.holder == operator:
        return _error(409, "conflict", "you already hold this conversation")
    if state.holder is not None and not (body and body.transfer):
        return _error(409, "conflict", f"{state.holder} already holds this conversation")
    data = OperatorJoined(
        operator=operator,
        joined_at=datetime.now(UTC),
        display_name=operator,
        transfer_from=state.holder,
    )
    event = NewEvent("OperatorJoined", data, actor=f"operator:{operator}")
    return await run_in_threadpool(_append, console, conversation_id, event, version)


@router.post("/api/conversations/{conversation_id}/messages")
async def say(
    conversation_id: str,
    request: Request,
    body: Say,
    operator: Operator,
    tenant: Scope,
    console: ConsoleDep,
) -> Response:
    blank = None if body.text.strip() else "text: must not be blank"
    found = await _take_action(conversation_id, request, operator, tenant, console, blank)
    if isinstance(found, Response):
        return found
    state, version = found
    if state.holder != operator:
        return _error(409, "conflict", "join the conversation before writing in it")

    def run() -> Response:
        # At the version read, so a message never lands after someone else took over.
        result = _append(console, conversation_id, event, version)
        if result.status_code == 409:
            again = _held_state(console, conversation_id, tenant)
            if not isinstance(again, Response) and again[0].holder == operator:
                return _append(console, conversation_id, event, again[1])
        return result

    event_id = uuid4()
    event = NewEvent(
        "MessagePosted",
        MessagePosted(role="operator", text=body.text),
        event_id,
        actor=f"operator:{operator}",
    )
    result = await run_in_threadpool(run)
    if result.status_code != 201 or console.delivery is None:
        return result
    # Recorded once above; the visitor's SMS/WhatsApp/email legs get the same words (each
    # records only its delivery). The widget reads the live stream and needs nothing.
    outcomes = await console.delivery.deliver(conversation_id, body.text, event_id)
    payload = json.loads(bytes(result.body))
    payload["delivered"] = [{"channel": c, "error": e} for c, e in outcomes]
    return JSONResponse(payload, status_code=201, headers=SECURITY_HEADERS)


@router.post("/api/conversations/{conversation_id}/leave")
async def leave(
    conversation_id: str, request: Request, operator: Operator, tenant: Scope, console: ConsoleDep
) -> Response:
    found = await _take_action(conversation_id, request, operator, tenant, console)
    if isinstance(found, Response):
        return found
    state, version = found
    if state.holder != operator:
        return _error(409, "conflict", "you do not hold this conversation")
    data = OperatorLeft(operator=operator, left_at=datetime.now(UTC), reason="handed back")
    event = NewEvent("OperatorLeft", data, actor=f"operator:{operator}")
    result = await run_in_threadpool(_append, console, conversation_id, event, version)
    if result.status_code == 201:
        await _hang_up(console, conversation_id, operator)  # handing back includes the call
    return result


def _append_latest(console: Console, conversation_id: str, event: NewEvent) -> Response:
    """Appends what already happened on the media path (a bridge up or down): at the latest
    version, retried once if a visitor's words landed meanwhile."""
    response: Response = _error(409, "conflict", "the conversation changed meanwhile")
    for _ in range(3):
        found = _held_state(console, conversation_id, None)
        if isinstance(found, Response):
            return found
        response = _append(console, conversation_id, event, found[1])
        if response.status_code != 409:
            return response
    return response


async def _hang_up(console: Console, conversation_id: str, operator: str) -> Response | None:
    if console.calls is None:
        return None
    left = await console.calls.leave(conversation_id)
    if left is None:
        return None
    data = OperatorLeftCall(operator=left[1], leg_id=left[0], left_at=datetime.now(UTC))
    event = NewEvent("OperatorLeftCall", data, leg_id=left[0], actor=f"operator:{operator}")
    return await run_in_threadpool(_append_latest, console, conversation_id, event)


@router.post("/api/conversations/{conversation_id}/call")
async def join_call(
    conversation_id: str,
    request: Request,
    body: CallOffer,
    operator: Operator,
    tenant: Scope,
    console: ConsoleDep,
) -> Response:
    """The operator's browser joins the visitor's live voice call (WebRTC offer in, answer
    out): the AI leaves the call, the conversation stays one stream (OperatorJoinedCall)."""
    found = await _take_action(conversation_id, request, operator, tenant, console)
    if isinstance(found, Response):
        return found
    if console.calls is None:
        return _error(503, "unavailable", "voice calls are not wired on this server")
    if found[0].holder != operator:
        return _error(409, "conflict", "join the conversation before joining its call")
    try:
        leg_id, answer = await console.calls.join(conversation_id, operator, body.sdp, body.type)
    except CallNotBridgeableError as exc:
        return _error(409, "conflict", str(exc))
    except InvalidOfferError as exc:
        return _error(422, "invalid_input", str(exc))
    data = OperatorJoinedCall(operator=operator, leg_id=leg_id, joined_at=datetime.now(UTC))
    event = NewEvent("OperatorJoinedCall", data, leg_id=leg_id, actor=f"operator:{operator}")
    result = await run_in_threadpool(_append_latest, console, conversation_id, event)
    if result.status_code != 201:
        await console.calls.leave(conversation_id)  # not recorded: not bridged either
        return result
    payload = json.loads(bytes(result.body)) | {"leg_id": leg_id, "sdp": answer, "type": "answer"}
    return JSONResponse(payload, status_code=201, headers=SECURITY_HEADERS)


@router.delete("/api/conversations/{conversation_id}/call")
async def leave_call(
    conversation_id: str, request: Request, operator: Operator, tenant: Scope, console: ConsoleDep
) -> Response:
    """The operator hangs up; the AI is back on the call (OperatorLeftCall)."""
    found = await _take_action(conversation_id, request, operator, tenant, console)
    if isinstance(found, Response):
        return found
    if found[0].holder != operator:
        return _error(409, "conflict", "you do not hold this conversation")
    done = await _hang_up(console, conversation_id, operator)
    return done or _error(409, "conflict", "you are not on this conversation's call")


@router.post("/api/conversations/{conversation_id}/call-visitor")
async def call_visitor(
    conversation_id: str, request: Request, operator: Operator, tenant: Scope, console: ConsoleDep
) -> Response:
    """The visitor is on chat: offer them a call with this operator (HandoffOffered, reason
    `operator_call`). The widget shows the offer; accepting opens a WebRTC leg through the
    same accept/redeem path as the AI's offers, on which the AI stays silent while the
    operator holds the conversation, and the operator's console joins it (`/call`)."""
    found = await _take_action(conversation_id, request, operator, tenant, console)
    if isinstance(found, Response):
        return found
    state, version = found

    def run() -> Response:
        if state.holder != operator:
            return _error(409, "conflict", "join the conversation before calling the visitor")
        ctx = build_context(read_conversation(console.log, conversation_id).events)
        if any(leg.channel == "webrtc" for leg in ctx.open_legs):
            return _error(409, "conflict", "the visitor is already on a voice call")
        batch: list[NewEvent] = []
        actor = f"operator:{operator}"
        active = ctx.active_handoff
        if active is not None and active.status in ("offered", "accepted"):
            if active.reason == OPERATOR_CALL:
                return _error(409, "conflict", "a call with the visitor is already offered")
            # The AI's own offer (a call with the AI) gives way to the person's.
            declined = HandoffDeclined(handoff_id=active.handoff_id, reason="superseded")
            batch.append(NewEvent("HandoffDeclined", declined, actor=actor))
        handoff_id = f"ho_{uuid4().hex}"
        offer = HandoffOffered(handoff_id=handoff_id, channel="webrtc", reason=OPERATOR_CALL)
        batch.append(NewEvent("HandoffOffered", offer, actor=actor))
        assert console.ledger is not None
        try:
            console.ledger.append_batch(conversation_id, batch, expected_version=version)
        except ConcurrencyConflictError:
            return _error(409, "conflict", "the conversation changed meanwhile; reload and retry")
        body = {"type": "HandoffOffered", "handoff_id": handoff_id, "reason": OPERATOR_CALL}
        return JSONResponse(body, status_code=201, headers=SECURITY_HEADERS)

    return await run_in_threadpool(run)


@router.get("/api/conversations/{conversation_id}/holder")
def holder(
    conversation_id: str, tenant: Scope, console: ConsoleDep, mask: bool | None = None
) -> Response:
    """Who holds the conversation and the agent-context projection the AI worked from."""
    if bad := _bad_id(conversation_id):
        return bad
    found = _held_state(console, conversation_id, tenant)
    if isinstance(found, Response):
        return found
    state, version = found
    events = read_conversation(console.log, conversation_id).events
    model = build_context(events)
    context = model.model_dump(mode="json")
    ctx = {
        "topic": context.get("topic"),
        "entities": context.get("entities"),
        "open_questions": [q.text for q in model.open_questions],
        "verification": context.get("verification"),
    }
    body = {
        "conversation_id": conversation_id,
        "version": version,
        "holder": state.holder,
        "waiting": state.waiting,
        "requested_at": state.requested_at.isoformat() if state.requested_at else None,
        "reason": state.reason,
        "summary": _summary(state, events),
        "context": mask_data(ctx) if _mask(console, mask) else ctx,
    }
    return JSONResponse(json.loads(json.dumps(body, default=str)), headers=SECURITY_HEADERS)


_LIVE_TYPES = frozenset(
    {"MessagePosted", "UtteranceTranscribed", "AgentSpoke", "HumanRequested", "OperatorJoined",
     "OperatorLeft", "LegOpened", "LegClosed", "OperatorJoinedCall", "OperatorLeftCall",
     "HandoffOffered"}
)  # fmt: skip


def _live_item(event: Any, mask: bool) -> dict[str, Any]:
    data = event.data.model_dump(mode="json")
    if mask:
        data = mask_data(data)
    return {
        "position": event.position,
        "type": event.type,
        "leg_id": event.leg_id,
        "actor": event.actor,
        "occurred_at": event.occurred_at.isoformat(),
        "data": data,
    }


@router.get("/api/conversations/{conversation_id}/live")
async def live(
    request: Request,
    conversation_id: str,
    tenant: Scope,
    console: ConsoleDep,
    after: int = 0,
    mask: bool | None = None,
) -> Response:
    """SSE: the conversation's thread as it happens (what the visitor and the AI or the
    operator say, who joined and left), so the operator sees the visitor type live. The
    ledger's version is checked every half second, with the session (the stream ends once
    it is logged out on any replica); only new events are read."""
    if bad := _bad_id(conversation_id):
        return bad
    found = await run_in_threadpool(_held_state, console, conversation_id, tenant)
    if isinstance(found, Response):
        return found
    masked = _mask(console, mask)
    session = request.cookies.get(auth.COOKIE)

    async def frames() -> AsyncIterator[bytes]:
        seen = max(0, after)
        idle = 0.0
        yield b"retry: 2000\n\n"
        while True:
            version = await run_in_threadpool(
                _version_if_signed_in, console, session, conversation_id
            )
            if version is None:
                return
            if version > seen:
                events = await run_in_threadpool(console.log.read, conversation_id, seen)
                for e in events:
                    seen = e.position
                    if e.type in _LIVE_TYPES:
                        body = json.dumps(_live_item(e, masked))
                        yield f"id: {e.position}\nevent: thread\ndata: {body}\n\n".encode()
                idle = 0.0
            elif idle >= 15:
                idle = 0.0
                yield b": keepalive\n\n"
            await asyncio.sleep(0.5)
            idle += 0.5

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers=SECURITY_HEADERS | {"X-Accel-Buffering": "no"},
    )
