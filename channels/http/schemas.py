"""Request and response bodies of the `/v1` API (they define the published OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

Channel = Literal["chat", "webrtc", "sms", "whatsapp", "pstn", "email"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartConversation(_Strict):
    channel: Channel = "chat"
    visitor_ref: str | None = Field(default=None, min_length=1, max_length=200)
    transport_ref: str | None = Field(default=None, min_length=1, max_length=500)


class ConversationCreated(BaseModel):
    conversation_id: str
    leg_id: str
    visitor_token: str
    expires_in: int = Field(description="seconds until the visitor token expires")


class AppendEvent(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "3f1c2a4e-8b7d-4c1e-9f2a-5d6e7f809a1b",
                    "type": "MessagePosted",
                    "data": {"role": "visitor", "text": "Hi, I have a question about a claim"},
                },
                {
                    "event_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "type": "UtteranceTranscribed",
                    "data": {
                        "role": "visitor",
                        "text": "yes that's the one",
                        "start_ms": 0,
                        "end_ms": 1200,
                        "confidence": 0.92,
                    },
                    "leg_id": "leg_voice_1",
                    "expected_version": 3,
                },
            ]
        },
    )
    event_id: UUID = Field(description="idempotency key: a repeat returns the original position")
    type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    data: dict[str, Any]
    leg_id: str | None = Field(default=None, min_length=1, max_length=200)
    # Strict: `true` and "3" are refused, not read as 1 and 3.
    expected_version: StrictInt | None = Field(
        default=None, ge=0, le=2**53, description="optimistic concurrency: 409 if stale"
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="when the adapter saw it happen (defaults to now)"
    )


class Appended(BaseModel):
    event_id: UUID
    position: int
    sequence: int
    duplicate: bool


class EventOut(BaseModel):
    event_id: UUID
    conversation_id: str
    position: int
    sequence: int
    type: str
    data: dict[str, Any]
    occurred_at: str
    recorded_at: str
    leg_id: str | None
    actor: str | None
    schema_version: int
    prev_hash: str
    hash: str


class EventPage(BaseModel):
    conversation_id: str
    events: list[EventOut]
    next_after: int = Field(description="pass as `after` to read the next page")


class PostMessage(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Can you check my January claim?"}]},
    )
    text: str = Field(min_length=1, max_length=8000)
    message_id: UUID = Field(
        default_factory=uuid4, description="idempotency key for the visitor's message"
    )


class MessageReply(BaseModel):
    position: int = Field(description="position of the visitor's message")
    duplicate: bool
    reply: str | None
    handoff_offered: str | None = Field(description="handoff id when the agent offers voice")


class AcceptHandoff(_Strict):
    handoff_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the offer to accept; omitted: the visitor asks for voice unprompted",
    )
    channel: Literal["webrtc", "pstn", "sms", "whatsapp", "email"] = Field(
        default="webrtc",
        description="webrtc: voice in the widget; pstn: Threadline calls the phone; "
        "sms/whatsapp: a link that continues the conversation by text; "
        "email: a mailto: link that continues it by email",
    )
    phone: str | None = Field(
        default=None,
        min_length=8,
        max_length=32,
        description="pstn: E.164 number to call; omitted: the conversation's verified phone",
    )


class HandoffTicketOut(BaseModel):
    conversation_id: str
    handoff_id: str
    handoff_token: str = Field(description="present it when opening the voice leg")
    expires_at: str
    channel: str
    level: int = Field(description="verification level the voice leg inherits (0 = none)")
    number: str | None = Field(default=None, description="pstn: the number being called")
    link: str | None = Field(
        default=None, description="sms/whatsapp: opens the visitor's app, prefilled with the token"
    )


class Health(BaseModel):
    status: Literal["ok"]
    max_sequence: int
