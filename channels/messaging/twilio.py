"""Twilio (and Twilio-compatible) SMS and WhatsApp: form webhooks signed with
`X-Twilio-Signature`, outbound messages through the Messages REST resource (httpx)."""

from __future__ import annotations

import re

import httpx

from threadline.channels.messaging import phone, twilio_signature
from threadline.channels.messaging.errors import (
    DeliveryFailedError,
    InvalidPhoneNumberError,
    InvalidSignatureError,
    MalformedWebhookError,
    ProviderNotConfiguredError,
)
from threadline.channels.messaging.provider import (
    DeliveryReport,
    InboundMessage,
    MessagingChannel,
    SentMessage,
    WebhookItem,
    WebhookRequest,
    as_state,
)
from threadline.channels.messaging.settings import MessagingSettings

NAME = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
_SID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_BODY_CHARS = 8000


class TwilioProvider:
    """`transport` is for tests (e.g. httpx.MockTransport); production uses the network."""

    def __init__(
        self, settings: MessagingSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport

    @property
    def name(self) -> str:
        return NAME

    def _token(self) -> str:
        token = self._settings.twilio_auth_token
        if token is None or not token.get_secret_value():
            raise ProviderNotConfiguredError("THREADLINE_TWILIO_AUTH_TOKEN is not set")
        return token.get_secret_value()

    def authenticate(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        ok = twilio_signature.validate(
            self._token(),
            request.url,
            request.form,
            signature,
            body=None if request.form else request.body,
        )
        if not ok:
            raise InvalidSignatureError("X-Twilio-Signature does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookItem]:
        form = _single_values(request.form)
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid or not _SID.fullmatch(sid):
            raise MalformedWebhookError("MessageSid is missing or invalid")
        status = form.get("MessageStatus")
        if status is not None and status != "received":
            return [self._report(form, sid, status)]
        return [self._inbound(form, sid)]

    def _inbound(self, form: dict[str, str], sid: str) -> InboundMessage:
        raw_from = form.get("From")
        if not raw_from:
            raise MalformedWebhookError("From is missing")
        channel: MessagingChannel = (
            "whatsapp" if raw_from.lower().startswith("whatsapp:") else "sms"
        )
        try:
            from_number = phone.normalize(raw_from)
            to_number = phone.normalize(form["To"]) if form.get("To") else None
        except InvalidPhoneNumberError as exc:
            raise MalformedWebhookError(str(exc)) from None
        text = form.get("Body", "")
        if not text.strip():
            media = form.get("NumMedia", "0")
            if not media.isdigit() or int(media) == 0:
                raise MalformedWebhookError("Body is empty and the message carries no media")
            text = f"[{int(media)} media attachment(s)]"
        if len(text) > MAX_BODY_CHARS:
            raise MalformedWebhookError(f"Body is longer than {MAX_BODY_CHARS} characters")
        return InboundMessage(NAME, channel, sid, from_number, to_number, text)

    def _report(self, form: dict[str, str], sid: str, status: str) -> DeliveryReport:
        state = as_state(status)
        if state is None:
            raise MalformedWebhookError(f"unknown MessageStatus {status[:32]!r}")
        recipient = form.get("To", "")
        channel: MessagingChannel = (
            "whatsapp" if recipient.lower().startswith("whatsapp:") else "sms"
        )
        error_code = form.get("ErrorCode") or None
        if error_code is not None and len(error_code) > 64:
            raise MalformedWebhookError("ErrorCode is too long")
        return DeliveryReport(NAME, channel, sid, state, error_code)

    async def send(self, channel: MessagingChannel, to: str, text: str) -> SentMessage:
        settings = self._settings
        sid = settings.twilio_account_sid
        sender = (
            settings.twilio_whatsapp_from if channel == "whatsapp" else settings.twilio_sms_from
        )
        if not sid or not sender:
            raise ProviderNotConfiguredError(
                f"Twilio account sid and {channel} sender number must be set to send"
            )
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        data = {"To": prefix + to, "From": prefix + phone.normalize(sender), "Body": text}
        if settings.twilio_status_callback_url:
            data["StatusCallback"] = settings.twilio_status_callback_url
        url = f"{settings.twilio_api_base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=settings.provider_timeout_s
            ) as client:
                response = await client.post(url, data=data, auth=(sid, self._token()))
        except httpx.HTTPError as exc:
            raise DeliveryFailedError(NAME, f"request failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise DeliveryFailedError(NAME, _error_message(response), response.status_code)
        try:
            body = response.json()
            message_sid = str(body["sid"])
            status = str(body.get("status", "queued"))
        except (ValueError, KeyError, TypeError):
            raise DeliveryFailedError(
                NAME, "unexpected response body", response.status_code
            ) from None
        state = as_state(status) or "queued"
        return SentMessage(NAME, channel, message_sid, state, to)


def _single_values(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Twilio sends each field once; a repeated field is ambiguous, so it is refused."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise MalformedWebhookError(f"field {name[:40]!r} is repeated")
        out[name] = value
    return out


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "message" in body:
        return f"HTTP {response.status_code}: {str(body['message'])[:200]}"
    return f"HTTP {response.status_code}"
