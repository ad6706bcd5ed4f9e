"""WhatsApp Cloud API (Meta): JSON webhooks signed with `X-Hub-Signature-256`
(HMAC-SHA256 of the raw body, keyed by the app secret), the `hub.verify_token`
subscription handshake, and outbound text through `/{phone_number_id}/messages` (httpx)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline.channels.messaging import phone
from threadline.channels.messaging.errors import (
    DeliveryFailedError,
    InvalidPhoneNumberError,
    InvalidSignatureError,
    MalformedWebhookError,
    ProviderNotConfiguredError,
    VerificationRefusedError,
)
from threadline.channels.messaging.provider import (
    DeliveryReport,
    DeliveryState,
    InboundMessage,
    MessagingChannel,
    SentMessage,
    WebhookItem,
    WebhookRequest,
)
from threadline.channels.messaging.settings import MessagingSettings

NAME = "whatsapp_cloud"
SIGNATURE_HEADER = "x-hub-signature-256"
MAX_BODY_CHARS = 8000
_STATUS: dict[str, DeliveryState] = {
    "accepted": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Text(_Model):
    body: str


class _Message(_Model):
    id: str = Field(min_length=1, max_length=200)
    from_: str = Field(alias="from", min_length=1, max_length=32)
    type: str = Field(min_length=1, max_length=32)
    text: _Text | None = None


class _Error(_Model):
    code: int | str


class _Status(_Model):
    id: str = Field(min_length=1, max_length=200)
    status: str
    recipient_id: str | None = None
    errors: list[_Error] = Field(default_factory=list)


class _Metadata(_Model):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class _Value(_Model):
    metadata: _Metadata | None = None
    messages: list[_Message] = Field(default_factory=list)
    statuses: list[_Status] = Field(default_factory=list)


class _Change(_Model):
    field: str
    value: _Value


class _Entry(_Model):
    changes: list[_Change] = Field(default_factory=list)


class _Payload(_Model):
    object: str
    entry: list[_Entry] = Field(min_length=1)


def signature_for(app_secret: str, body: bytes) -> str:
    """The header value Meta sends: "sha256=" + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WhatsAppCloudProvider:
    def __init__(
        self, settings: MessagingSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport

    @property
    def name(self) -> str:
        return NAME

    def verify_subscription(
        self, mode: str | None, token: str | None, challenge: str | None
    ) -> str:
        """The GET handshake: echo `hub.challenge` when the verify token matches."""
        expected = self._settings.whatsapp_verify_token
        if expected is None or not expected.get_secret_value():
            raise ProviderNotConfiguredError("THREADLINE_WHATSAPP_VERIFY_TOKEN is not set")
        if mode != "subscribe" or token is None or not challenge:
            raise VerificationRefusedError("not a subscription handshake")
        if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
            raise VerificationRefusedError("verify token does not match")
        if len(challenge) > 200:
            raise VerificationRefusedError("challenge is too long")
        return challenge

    def authenticate(self, request: WebhookRequest) -> None:
        secret = self._settings.whatsapp_app_secret
        if secret is None or not secret.get_secret_value():
            raise ProviderNotConfiguredError("THREADLINE_WHATSAPP_APP_SECRET is not set")
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = signature_for(secret.get_secret_value(), request.body)
        if not given or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise InvalidSignatureError("X-Hub-Signature-256 does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookItem]:
        try:
            payload = _Payload.model_validate(json.loads(request.body))
        except (ValueError, ValidationError) as exc:
            kind = type(exc).__name__
            raise MalformedWebhookError(f"not a WhatsApp webhook payload: {kind}") from None
        if payload.object != "whatsapp_business_account":
            raise MalformedWebhookError(f"unexpected object {payload.object[:40]!r}")
        items: list[WebhookItem] = []
        for entry in payload.entry:
            for change in entry.changes:
                if change.field != "messages":
                    continue  # other subscriptions (templates, account updates) are not ours
                to_number = _business_number(change.value.metadata)
                items.extend(_inbound(m, to_number) for m in change.value.messages)
                items.extend(_report(s) for s in change.value.statuses)
        return items

    async def send(self, channel: MessagingChannel, to: str, text: str) -> SentMessage:
        if channel != "whatsapp":
            raise DeliveryFailedError(NAME, f"cannot send {channel} messages")
        settings = self._settings
        token = settings.whatsapp_access_token
        if token is None or not settings.whatsapp_phone_number_id:
            raise ProviderNotConfiguredError(
                "WhatsApp access token and phone number id must be set"
            )
        base = settings.whatsapp_api_base_url.rstrip("/")
        url = f"{base}/{settings.whatsapp_phone_number_id}/messages"
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.lstrip("+"),
            "type": "text",
            "text": {"preview_url": False, "body": text},
        }
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=settings.provider_timeout_s
            ) as client:
                response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailedError(NAME, f"request failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryFailedError(NAME, f"HTTP {response.status_code}", response.status_code)
        try:
            message_id = str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise DeliveryFailedError(
                NAME, "unexpected response body", response.status_code
            ) from None
        return SentMessage(NAME, "whatsapp", message_id, "queued", to)


def _business_number(metadata: _Metadata | None) -> str | None:
    if metadata is None or not metadata.display_phone_number:
        return None
    try:
        return phone.normalize(metadata.display_phone_number, assume_plus=True)
    except InvalidPhoneNumberError:
        return None


def _inbound(message: _Message, to_number: str | None) -> InboundMessage:
    try:
        sender = phone.normalize(message.from_, assume_plus=True)
    except InvalidPhoneNumberError as exc:
        raise MalformedWebhookError(str(exc)) from None
    if message.type == "text":
        if message.text is None or not message.text.body.strip():
            raise MalformedWebhookError("text message without a body")
        text = message.text.body
    else:
        # Media, location, reactions...: recorded as a marker so the thread shows something came.
        text = f"[{message.type} message]"
    if len(text) > MAX_BODY_CHARS:
        raise MalformedWebhookError(f"text is longer than {MAX_BODY_CHARS} characters")
    return InboundMessage(NAME, "whatsapp", message.id, sender, to_number, text)


def _report(status: _Status) -> DeliveryReport:
    state = _STATUS.get(status.status)
    if state is None:
        raise MalformedWebhookError(f"unknown status {status.status[:32]!r}")
    error: Any = status.errors[0].code if status.errors else None
    return DeliveryReport(
        NAME, "whatsapp", status.id, state, str(error)[:64] if error is not None else None
    )
