"""`/v1/voice/sessions`: the widget's voice leg (WebRTC) on the conversation its handoff
token names. The token is the credential (single-use, short-lived, bound to the conversation
and to the verification level reached in chat); closing a leg needs the visitor token."""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import InvalidInputError, NotFoundError, ServiceUnavailableError
from threadline.access.policy import authorize
from threadline.channels.http.deps import (
    DirectoryDep,
    RequiredPrincipal,
    ServicesDep,
    client_address,
)
from threadline.channels.http.errors import responses
from threadline.channels.services import Services
from threadline.channels.voice.errors import InvalidOfferError, LegNotFoundError, VoiceError
from threadline.channels.voice.sessions import MAX_SDP_CHARS, VoiceSessions
from threadline.handoff.errors import TokenRejectedError

router = APIRouter(prefix="/v1/voice", tags=["voice"])
LegId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class VoiceSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handoff_token: str = Field(min_length=1, max_length=4096)
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS, description="the browser's offer")
    type: Literal["offer"] = "offer"


class VoiceSessionOut(BaseModel):
    conversation_id: str
    leg_id: str
    sdp: str = Field(description="the server's SDP answer (all ICE candidates included)")
    type: Literal["answer"] = "answer"


def install(app: FastAPI, services: Services) -> None:
    """Adds the routes. The voice turns run `services.voice_agent` (the chat's agent)."""
    from threadline.handoff.service import HandoffService

    handoffs = services.handoff_service or HandoffService(services.ledger)
    voice_agent = services.voice_agent
    stt, tts = services.voice_providers or (None, None)  # shared with PSTN calls when wired
    app.state.voice = VoiceSessions(
        services.ledger,
        handoffs,
        agent=voice_agent.handler if voice_agent is not None else None,
        stt=stt,
        tts=tts,
        settings=services.voice_settings,
    )
    app.include_router(router)


async def shutdown(app: FastAPI) -> None:
    sessions: VoiceSessions | None = getattr(app.state, "voice", None)
    if sessions is not None:
        await sessions.close_all("server_shutdown")


def _sessions(request: Request) -> VoiceSessions:
    sessions: VoiceSessions | None = getattr(request.app.state, "voice", None)
    if sessions is None:
        raise ServiceUnavailableError("voice is not configured")
    return sessions


@router.post(
    "/sessions",
    status_code=201,
    response_model=VoiceSessionOut,
    responses=responses(401, 409, 422, 429, 503),
    summary="Open the WebRTC voice leg with a handoff token and the browser's SDP offer",
)
async def open_session(
    body: VoiceSessionIn, request: Request, services: ServicesDep
) -> VoiceSessionOut:
    assert services.limiters is not None
    gate, address = services.limiters.failed_auth, client_address(request)
    gate.check(address)  # before the token is looked at: a throttled caller causes nothing
    try:
        opened = await _sessions(request).open(body.handoff_token, body.sdp, body.type)
    except InvalidOfferError as exc:
        raise InvalidInputError(str(exc)) from None
    except TokenRejectedError:
        gate.failed(address)
        raise
    except VoiceError as exc:
        raise ServiceUnavailableError(str(exc)) from None
    return VoiceSessionOut(
        conversation_id=opened.conversation_id, leg_id=opened.leg_id, sdp=opened.sdp
    )


@router.delete(
    "/sessions/{leg_id}",
    status_code=204,
    responses=responses(401, 403, 404),
    summary="Hang up the voice leg (the visitor goes back to typing)",
)
async def close_session(
    leg_id: LegId, request: Request, principal: RequiredPrincipal, directory: DirectoryDep
) -> Response:
    sessions = _sessions(request)
    try:
        conversation_id = sessions.conversation_of(leg_id)
    except LegNotFoundError:
        raise NotFoundError("no such voice leg") from None
    await run_in_threadpool(authorize, principal, conversation_id, directory)
    # It may have closed by itself meanwhile: the outcome the visitor asked for.
    with contextlib.suppress(LegNotFoundError):
        await sessions.close(leg_id, "visitor_hangup")
    return Response(status_code=204)
