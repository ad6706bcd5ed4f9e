"""The interface every messaging provider implements (one file per provider).

A provider only translates: it authenticates a webhook, turns it into `InboundMessage` and
`DeliveryReport` values, and sends text through its REST API. Linking to conversations and
recording events is `service.py`'s job, the same for every provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

MessagingChannel = Literal["sms", "whatsapp"]
# Twilio's vocabulary; WhatsApp's is a subset (sent, delivered, read, failed) plus "accepted",
# which we record as queued.
DeliveryState = Literal["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]
DELIVERY_STATES: tuple[DeliveryState, ...] = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
)


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What a provider needs from an HTTP request: the URL it signed, headers, raw body."""

    url: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    form: tuple[tuple[str, str], ...] = field(default=())  # parsed form pairs, if form-encoded


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider: str
    channel: MessagingChannel
    provider_message_id: str
    from_number: str  # E.164, e.g. +15551234567
    to_number: str | None
    text: str


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    provider: str
    channel: MessagingChannel
    provider_message_id: str
    status: DeliveryState
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class SentMessage:
    provider: str
    channel: MessagingChannel
    provider_message_id: str
    status: DeliveryState
    to_number: str


WebhookItem = InboundMessage | DeliveryReport


class MessagingProvider(Protocol):
    """One provider. `authenticate` and `parse` are pure; `send` does network I/O."""

    @property
    def name(self) -> str: ...

    def authenticate(self, request: WebhookRequest) -> None:
        """Raises `InvalidSignatureError` (or `ProviderNotConfiguredError`) unless the request
        is genuine."""

    def parse(self, request: WebhookRequest) -> list[WebhookItem]:
        """Raises `MalformedWebhookError` when the body cannot be understood."""

    async def send(self, channel: MessagingChannel, to: str, text: str) -> SentMessage:
        """Sends `text` to the E.164 number `to`; raises `DeliveryFailedError`."""


def as_state(value: str) -> DeliveryState | None:
    """The delivery state named `value`, or None when it is not one."""
    for state in DELIVERY_STATES:
        if state == value:
            return state
    return None
