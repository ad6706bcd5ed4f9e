"""`/v1/conversations`: start a conversation, append and read events, read projections, post
a visitor chat message, accept a handoff offer.

Every append is validated completely before it reaches the ledger and is one ledger call, so a
request answered with 4xx has appended nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import ForbiddenError, InvalidInputError, ServiceUnavailableError
from threadline.access.policy import (
    KeyPrincipal,
    TenantDirectory,
    VisitorPrincipal,
    authorize,
    authorize_cached,
    require_key,
)
from threadline.channels.http import messaging_routes
from threadline.channels.http.deps import (
    DirectoryDep,
    OptionalPrincipal,
    RequiredPrincipal,
    ServicesDep,
    client_address,
)
from threadline.channels.http.errors import responses
from threadline.channels.http.schemas import (
    AcceptHandoff,
    Appended,
    AppendEvent,
    ConversationCreated,
    EventOut,
    EventPage,
    HandoffTicketOut,
    MessageReply,
    PostMessage,
    StartConversation,
)
from threadline.channels.http.text import has_lone_surrogate, is_blank
from threadline.channels.http.threads import in_append_thread
from threadline.channels.services import Services
from threadline.ledger.envelope import AppendResult, NewEvent
from threadline.ledger.events import ConversationStarted, LegOpened, parse_data

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

ConversationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Upto = Annotated[
    int | None, Query(ge=1, le=2**53, description="as of this position (point in time)")
]
_READ = responses(401, 403, 404, 422, 429)
_WRITE = responses(401, 403, 404, 409, 413, 422, 429)


def new_leg_id() -> str:
    return f"leg_{uuid.uuid4().hex[:16]}"


@router.post(
    "",
    status_code=201,
    response_model=ConversationCreated,
    responses=responses(401, 403, 413, 422, 429),
    summary="Start a conversation and its first leg",
)
async def start_conversation(
    request: Request,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: OptionalPrincipal,
    body: StartConversation | None = None,
) -> ConversationCreated:
    body = body or StartConversation()
    if isinstance(principal, VisitorPrincipal):
        raise ForbiddenError("a visitor token cannot start another conversation")
    if principal is None:
        if not services.settings.allow_anonymous_conversations:
            raise ForbiddenError("starting a conversation needs an adapter API key")
        assert services.limiters is not None
        services.limiters.anonymous.check(client_address(request))
        tenant, actor = services.settings.public_tenant, "visitor"
    else:
        tenant, actor = principal.tenant, principal.actor
    conversation_id = uuid.uuid4().hex
    leg_id = new_leg_id()
    events = [
        NewEvent(
            "ConversationStarted",
            ConversationStarted(channel=body.channel, tenant=tenant, visitor_ref=body.visitor_ref),
            actor=actor,
        ),
        NewEvent(
            "LegOpened",
            LegOpened(channel=body.channel, transport_ref=body.transport_ref),
            leg_id=leg_id,
            actor=actor,
        ),
    ]
    await run_in_threadpool(services.ledger.append_batch, conversation_id, events, 0)
    directory.remember(conversation_id, tenant)
    ttl = services.settings.visitor_token_ttl_s
    return ConversationCreated(
        conversation_id=conversation_id,
        leg_id=leg_id,
        visitor_token=services.tokens.issue(conversation_id, leg_id, tenant),
        expires_in=ttl,
    )


@router.post(
    "/{conversation_id}/events",
    status_code=201,
    response_model=Appended,
    responses={200: {"model": Appended, "description": "duplicate event id"}, **_WRITE},
    summary="Append one event (adapters)",
)
async def append_event(
    conversation_id: ConversationId,
    body: AppendEvent,
    request: Request,
    response: Response,
    principal: RequiredPrincipal,
) -> Appended:
    # Services and directory straight from the app state rather than two more FastAPI
    # sub-dependencies (each costs a measurable share of a request's CPU). The served app
    # answers most appends through `fast_append` (same checks, same function below).
    key = require_key(principal)
    appended = await append_checked(
        request.app.state.services, request.app.state.directory, key, conversation_id, body
    )
    if appended.duplicate:
        response.status_code = 200
    return appended


async def append_checked(
    services: Services,
    directory: TenantDirectory,
    key: KeyPrincipal,
    conversation_id: str,
    body: AppendEvent,
) -> Appended:
    """The append itself, once the caller is identified and the body is valid: shared by the
    route above and its fast path (`fast_append`), so both check and append the same way."""
    data = parse_data(body.type, body.data)  # InvalidEventError -> 422 before anything is touched
    event = NewEvent(
        body.type,
        data,
        event_id=body.event_id,
        leg_id=body.leg_id,
        actor=key.actor,
        occurred_at=body.occurred_at,
    )
    ledger = services.ledger
    # The common case on the event loop, no worker thread (`Ledger.append_on_loop`): one
    # wake-up per group commit instead of four thread hand-offs per append. Whatever it
    # cannot do without blocking (a tenant or head not cached, a repeat, a 409) it leaves,
    # having appended nothing, to the same call in a worker thread.
    on_loop = getattr(ledger, "append_on_loop", None)
    if on_loop is not None and authorize_cached(key, conversation_id, directory):
        result = await on_loop(conversation_id, event, body.expected_version)
        if result is not None:
            return _appended(result)

    def append() -> Appended:
        authorize(key, conversation_id, directory)
        return _appended(ledger.append(conversation_id, event, body.expected_version))

    return await in_append_thread(append)


def _appended(result: AppendResult) -> Appended:
    return Appended(
        event_id=result.event_id,
        position=result.position,
        sequence=result.sequence,
        duplicate=result.duplicate,
    )


@router.get(
    "/{conversation_id}/events",
    response_model=EventPage,
    responses=_READ,
    summary="Read a conversation's events in order",
)
async def read_events(
    conversation_id: ConversationId,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
    after: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    def read() -> EventPage:
        authorize(principal, conversation_id, directory)
        events = services.ledger.read(conversation_id, after=after, limit=limit)
        return EventPage(
            conversation_id=conversation_id,
            events=[EventOut.model_validate(e.to_json()) for e in events],
            next_after=events[-1].position if events else after,
        )

    return await run_in_threadpool(read)


# The three projection reads differ only in which read model answers: one route each,
# made by one factory (same paths, names and OpenAPI operation ids as hand-written ones).
_PROJECTIONS = {
    "transcript": "Every message and utterance of every leg, in order, with channel markers.",
    "context": "What an agent needs to act on this conversation now.",
    "identity": "Claimed and verified identities, level and method.",
}


def _projection_route(which: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def read_projection(
        conversation_id: ConversationId,
        services: ServicesDep,
        directory: DirectoryDep,
        principal: RequiredPrincipal,
        upto: Upto = None,
    ) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            authorize(principal, conversation_id, directory)
            models = services.read_models
            if models is None:
                raise ServiceUnavailableError("projections are not configured")
            return dict(getattr(models, which)(conversation_id, upto))

        return await run_in_threadpool(build)

    read_projection.__name__ = which
    read_projection.__doc__ = _PROJECTIONS[which]
    return read_projection


for _which in _PROJECTIONS:
    router.add_api_route(
        f"/{{conversation_id}}/{_which}",
        _projection_route(_which),
        methods=["GET"],
        name=_which,
        responses={**_READ, **responses(503)},
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    response_model=MessageReply,
    responses={
        200: {"model": MessageReply, "description": "duplicate message id"},
        **_WRITE,
        **responses(503),
    },
    summary="A visitor chat turn: records the message, runs the agent, returns its reply",
)
async def post_message(
    conversation_id: ConversationId,
    body: PostMessage,
    response: Response,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
) -> MessageReply:
    if len(body.text) > services.settings.max_text_chars:
        raise InvalidInputError(f"text: at most {services.settings.max_text_chars} characters")
    if has_lone_surrogate(body.text):
        raise InvalidInputError("text: not valid Unicode (a lone surrogate)")
    if is_blank(body.text):
        raise InvalidInputError("text: must have a visible character")
    leg_id = principal.leg_id if isinstance(principal, VisitorPrincipal) else None

    def turn() -> MessageReply:
        authorize(principal, conversation_id, directory)
        chat = services.chat
        if chat is None:
            raise ServiceUnavailableError("the chat agent is not configured")
        result = chat.visitor_turn(
            conversation_id, body.text, leg_id=leg_id, message_id=body.message_id
        )
        return MessageReply(
            position=result.position,
            duplicate=result.duplicate,
            reply=result.reply,
            handoff_offered=result.handoff_offered,
        )

    reply = await run_in_threadpool(turn)
    if reply.duplicate:
        response.status_code = 200
    return reply


@router.post(
    "/{conversation_id}/handoffs",
    status_code=201,
    responses={**_WRITE, **responses(503)},
    response_model=HandoffTicketOut,
    summary="Accept the agent's offer to continue by voice",
)
async def accept_handoff(
    conversation_id: ConversationId,
    request: Request,
    services: ServicesDep,
    directory: DirectoryDep,
    principal: RequiredPrincipal,
    body: AcceptHandoff | None = None,
) -> HandoffTicketOut:
    handoff_id = body.handoff_id if body else None
    leg_id = principal.leg_id if isinstance(principal, VisitorPrincipal) else None
    if body is not None and body.channel != "webrtc":
        await run_in_threadpool(authorize, principal, conversation_id, directory)
        ticket = await messaging_routes.channel_handoff(
            services, conversation_id, body.channel, body.phone, handoff_id, leg_id
        )
        return HandoffTicketOut.model_validate(ticket)

    def accept() -> HandoffTicketOut:
        authorize(principal, conversation_id, directory)
        handoffs = services.handoffs
        if handoffs is None:
            raise ServiceUnavailableError("handoffs are not configured")
        ticket = handoffs.accept(conversation_id, handoff_id, leg_id=leg_id)
        return HandoffTicketOut.model_validate(dict(ticket))

    accepted = await run_in_threadpool(accept)
    voice = getattr(request.app.state, "voice", None)
    if voice is not None:  # the first utterance's audio starts now, not when the leg opens
        voice.prepare(accepted.conversation_id, accepted.handoff_id)
    return accepted
