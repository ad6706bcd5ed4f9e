"""HTTP edge of the messaging channels: Twilio-compatible SMS/WhatsApp webhooks, delivery
status callbacks, and the WhatsApp Cloud API webhook (handshake + events).

Maps messaging and ledger errors to HTTP statuses (JSON `{"error", "detail"}`); a request
answered with 4xx appends nothing. `install(app, service)` mounts it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, BackgroundTasks, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import (
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
)
from threadline.channels.messaging.errors import (
    InvalidPhoneNumberError,
    InvalidSignatureError,
    MalformedWebhookError,
    MessagingError,
    ProviderNotConfiguredError,
    UnknownProviderMessageError,
    VerificationRefusedError,
)
from threadline.channels.messaging.provider import MessagingChannel, WebhookRequest
from threadline.channels.messaging.service import MessagingService, Received
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.messaging.whatsapp_cloud import NAME as WHATSAPP_CLOUD
from threadline.channels.messaging.whatsapp_cloud import WhatsAppCloudProvider
from threadline.channels.pstn.errors import (
    ConversationClosedError,
    NoPhoneNumberError,
    TrunkNotConfiguredError,
)
from threadline.ledger.errors import InvalidEventError, LedgerError, StoreUnavailableError

if TYPE_CHECKING:
    from threadline.channels.services import Services

router = APIRouter(prefix="/v1/channels", tags=["messaging"])

MAX_WEBHOOK_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"


def install(
    app: FastAPI, service: MessagingService, settings: MessagingSettings | None = None
) -> None:
    settings = settings or MessagingSettings()
    app.state.messaging = service
    app.state.messaging_settings = settings
    app.state.messaging_public_base_url = settings.public_base_url
    app.include_router(router)


def _service(request: Request) -> MessagingService | None:
    return getattr(request.app.state, "messaging", None)


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _map(exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidSignatureError | VerificationRefusedError):
        return _error(403, "forbidden", str(exc))
    if isinstance(exc, MalformedWebhookError):
        return _error(400, "malformed_webhook", str(exc))
    if isinstance(exc, UnknownProviderMessageError):
        return _error(404, "unknown_message", str(exc))
    if isinstance(exc, ProviderNotConfiguredError):
        return _error(503, "not_configured", str(exc))
    if isinstance(exc, InvalidEventError):
        return _error(422, "invalid_event", str(exc))
    if isinstance(exc, StoreUnavailableError):
        return _error(503, "store_unavailable", "the event store is unavailable")
    return _error(500, "internal", type(exc).__name__)


def _signed_url(request: Request) -> str:
    """The URL the provider signed: ours, or the public one when a proxy rewrote it."""
    base: str | None = getattr(request.app.state, "messaging_public_base_url", None)
    if not base:
        return str(request.url)
    query = request.url.query
    return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


async def _read(request: Request) -> bytes | JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_WEBHOOK_BYTES):
        return _error(413, "too_large", f"webhooks are limited to {MAX_WEBHOOK_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        return _error(413, "too_large", f"webhooks are limited to {MAX_WEBHOOK_BYTES} bytes")
    return body


async def _receive(
    request: Request,
    background: BackgroundTasks,
    provider: str,
    webhook: WebhookRequest,
    *,
    channel: MessagingChannel | None = None,
    reports_only: bool = False,
) -> list[Received] | JSONResponse:
    service = _service(request)
    if service is None:
        return _error(503, "not_configured", "messaging is not configured")

    def receive() -> list[Received]:
        return service.receive(provider, webhook, channel=channel, reports_only=reports_only)

    try:
        results = await run_in_threadpool(receive)
    except (MessagingError, LedgerError) as exc:
        return _map(exc)
    except RateLimitedError as exc:
        return JSONResponse(
            {"error": "rate_limited", "detail": str(exc)},
            status_code=429,
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
        )
    for received in results:
        if received.reply is not None:
            background.add_task(service.reply, provider, received)
    return results


async def _twilio(
    request: Request,
    background: BackgroundTasks,
    *,
    channel: MessagingChannel | None = None,
    reports_only: bool = False,
) -> Response:
    body = await _read(request)
    if isinstance(body, JSONResponse):
        return body
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        return _error(415, "unsupported_media_type", f"Twilio webhooks are {FORM}")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "malformed_webhook", "the form body cannot be decoded")
    headers = {k.lower(): v for k, v in request.headers.items()}
    webhook = WebhookRequest(_signed_url(request), headers, body, tuple(form))
    results = await _receive(
        request, background, "twilio", webhook, channel=channel, reports_only=reports_only
    )
    if isinstance(results, JSONResponse):
        return results
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/twilio/sms", summary="Inbound SMS (Twilio-compatible webhook)")
async def twilio_sms(request: Request, background: BackgroundTasks) -> Response:
    return await _twilio(request, background, channel="sms")


@router.post("/twilio/whatsapp", summary="Inbound WhatsApp message via Twilio")
async def twilio_whatsapp(request: Request, background: BackgroundTasks) -> Response:
    return await _twilio(request, background, channel="whatsapp")


@router.post("/twilio/status", summary="Twilio message delivery status callback")
async def twilio_status(request: Request, background: BackgroundTasks) -> Response:
    return await _twilio(request, background, reports_only=True)


@router.get("/whatsapp", summary="WhatsApp Cloud API subscription handshake")
async def whatsapp_handshake(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    service = _service(request)
    if service is None:
        return _error(503, "not_configured", "messaging is not configured")
    try:
        provider = service.provider(WHATSAPP_CLOUD)
        if not isinstance(provider, WhatsAppCloudProvider):
            raise ProviderNotConfiguredError("the WhatsApp Cloud provider is not configured")
        return PlainTextResponse(provider.verify_subscription(mode, token, challenge))
    except MessagingError as exc:
        return _map(exc)


@router.post("/whatsapp", summary="WhatsApp Cloud API webhook (messages and statuses)")
async def whatsapp_events(request: Request, background: BackgroundTasks) -> Response:
    body = await _read(request)
    if isinstance(body, JSONResponse):
        return body
    headers = {k.lower(): v for k, v in request.headers.items()}
    webhook = WebhookRequest(_signed_url(request), headers, body)
    results = await _receive(request, background, WHATSAPP_CLOUD, webhook)
    if isinstance(results, JSONResponse):
        return results
    recorded = sum(1 for r in results if r.route != "ignored" and not r.duplicate)
    return JSONResponse({"received": len(results), "recorded": recorded})


# -- handoffs to phone channels (POST /v1/conversations/{id}/handoffs, channel != webrtc) ---

CONTINUE_TEXT = "Continue my conversation"


def continue_link(channel: str, settings: MessagingSettings, token: str) -> str | None:
    """An `sms:` / click-to-chat link that opens the visitor's app on our number with the
    handoff token prefilled; sending it joins the conversation (see MessagingService)."""
    body = quote(f"{CONTINUE_TEXT} {token}")
    if channel == "sms" and settings.twilio_sms_from:
        return f"sms:{settings.twilio_sms_from}?&body={body}"
    if channel == "whatsapp" and settings.twilio_whatsapp_from:
        digits = settings.twilio_whatsapp_from.lstrip("+")
        return f"{settings.whatsapp_link_base.rstrip('/')}/{digits}?text={body}"
    return None


async def channel_handoff(
    services: Services,
    conversation_id: str,
    channel: Literal["pstn", "sms", "whatsapp", "email"],
    phone: str | None,
    handoff_id: str | None,
    leg_id: str | None,
) -> dict[str, Any]:
    """The caller is already authorised for the conversation."""
    if channel == "pstn":
        pstn = services.pstn
        if pstn is None:
            raise ServiceUnavailableError("PSTN dial-out is not configured")
        try:
            started = await pstn.dial(conversation_id, phone)
        except TrunkNotConfiguredError as exc:
            raise ServiceUnavailableError(str(exc)) from None
        except ConversationClosedError:
            raise NotFoundError("conversation not found") from None
        except (NoPhoneNumberError, InvalidPhoneNumberError) as exc:
            raise InvalidInputError(str(exc)) from None
        return {
            "conversation_id": conversation_id,
            "handoff_id": started.handoff_id,
            "handoff_token": started.token,
            "expires_at": started.expires_at,
            "channel": "pstn",
            "level": started.level,
            "number": started.number,
        }
    if channel == "email" and services.email is None:
        raise ServiceUnavailableError("email is not configured (THREADLINE_SMTP_LISTEN)")
    handoffs = services.handoffs
    if handoffs is None:
        raise ServiceUnavailableError("handoffs are not configured")

    def accept() -> dict[str, Any]:
        return dict(handoffs.accept(conversation_id, handoff_id, leg_id=leg_id, channel=channel))

    ticket = await run_in_threadpool(accept)
    if channel == "email" and services.email is not None:
        ticket["link"] = services.email.continue_link(ticket["handoff_token"])
    else:
        ticket["link"] = continue_link(
            channel, services.messaging_settings, ticket["handoff_token"]
        )
    return ticket
