"""Event payload schemas (pydantic v2) and the registry that maps type names to them.

The envelope (ids, positions, hashes) lives in `threadline.ledger.envelope`; here is only what an
event *says*. Payloads are immutable and reject unknown fields, so a typo in an adapter is
an error, not silently stored data. Old schema versions are upgraded by `ledger.upcasting`
when read, never rewritten in storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline.ledger import bounds
from threadline.ledger.errors import InvalidEventError, UnknownEventTypeError

Role = Literal["visitor", "agent", "human", "operator", "system"]
Channel = Literal["chat", "webrtc", "sms", "whatsapp", "pstn", "email"]
HandoffChannel = Literal["webrtc", "pstn", "sms", "whatsapp", "email"]
# explicit_request: a call or voice; explicit_request_human: a person (issue 16 hooks it).
SignalKind = Literal[
    "compliance_step",
    "complex_pricing",
    "frustration_spike",
    "explicit_request",
    "explicit_request_human",
]

# Text bounds keep a single event small enough to replay cheaply and to hash in microseconds.
ShortText = Field(min_length=1, max_length=200)
LongText = Field(min_length=1, max_length=8000)


class EventData(BaseModel):
    """Base of every payload. `schema_version` is the version this class writes."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)
    schema_version: ClassVar[int] = 1


class ConversationStarted(EventData):
    channel: Channel
    tenant: str = Field(default="default", min_length=1, max_length=64)
    visitor_ref: str | None = Field(default=None, max_length=200)


class LegOpened(EventData):
    channel: Channel
    transport_ref: str | None = Field(default=None, max_length=500)


class LegClosed(EventData):
    reason: str = ShortText


class MessagePosted(EventData):
    role: Role
    text: str = LongText


class UtteranceTranscribed(EventData):
    role: Role
    text: str = LongText
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    # Optional so events recorded before they existed still read.
    model: str | None = Field(default=None, max_length=200)
    duration_ms: int | None = Field(default=None, ge=0)
    avg_logprob: float | None = Field(default=None, le=0.0)
    no_speech_prob: float | None = Field(default=None, ge=0.0, le=1.0)
    low_confidence: bool = False
    # Wall clock when the visitor stopped speaking (the turn-latency start).
    ended_at: datetime | None = None


class AgentSpoke(EventData):
    text: str = LongText
    interrupted: bool = False
    spoken_text: str | None = Field(default=None, max_length=8000)
    # When the utterance's first audio frame left the server (None: it never played).
    first_audio_at: datetime | None = None


class IdentityClaimed(EventData):
    method: str = ShortText
    subject: str = ShortText


class IdentityVerified(EventData):
    method: str = ShortText
    level: int = Field(ge=1, le=3, description="1 possession, 2 knowledge, 3 strong")
    subject: str = ShortText


class VerificationFailed(EventData):
    method: str = ShortText
    reason: str = ShortText


class ToolCalled(EventData):
    call_id: str = ShortText
    name: str = ShortText
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResulted(EventData):
    call_id: str = ShortText
    result: Any = None
    error: str | None = Field(default=None, max_length=2000)


class EscalationSignalDetected(EventData):
    signal: SignalKind
    score: float = Field(ge=0.0, le=1.0)
    evidence: str = Field(min_length=1, max_length=2000)


class HandoffOffered(EventData):
    handoff_id: str = ShortText
    channel: HandoffChannel = "webrtc"
    reason: str | None = Field(default=None, max_length=200)


class HandoffAccepted(EventData):
    handoff_id: str = ShortText
    channel: HandoffChannel = "webrtc"


class HandoffCompleted(EventData):
    handoff_id: str = ShortText
    leg_id: str = ShortText
    first_utterance: str = LongText


class HandoffExpired(EventData):
    handoff_id: str = ShortText


class HandoffDeclined(EventData):
    handoff_id: str = ShortText
    reason: str | None = Field(default=None, max_length=200)


class HumanRequested(EventData):
    """The visitor asked for a person (explicitly or by an escalation signal)."""

    reason: str = ShortText
    requested_at: datetime


class OperatorJoined(EventData):
    """A person took the conversation over; the AI stays silent until OperatorLeft."""

    operator: str = ShortText
    joined_at: datetime
    display_name: str | None = Field(default=None, max_length=200)
    transfer_from: str | None = Field(default=None, max_length=200)


class OperatorLeft(EventData):
    operator: str = ShortText
    left_at: datetime
    reason: str | None = Field(default=None, max_length=200)


class CSATRecorded(EventData):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class ConversationResolved(EventData):
    outcome: str = Field(default="resolved", min_length=1, max_length=64)


class SubjectErased(EventData):
    subject: str = ShortText
    reason: str | None = Field(default=None, max_length=200)


class SubjectExportRequested(EventData):
    """A data subject's export was handed out (the subject is a blinded reference)."""

    subject: str = ShortText
    requested_by: str | None = Field(default=None, max_length=200)


class OpaqueData(EventData):
    """Payload of a type this process does not know (written by a newer version, or by an
    outer package that is not loaded): kept as stored so that readers skip it, not crash.
    Never registered, never appendable."""

    model_config = ConfigDict(extra="allow", frozen=True)


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.__name__: cls
    for cls in (
        ConversationStarted,
        LegOpened,
        LegClosed,
        MessagePosted,
        UtteranceTranscribed,
        AgentSpoke,
        IdentityClaimed,
        IdentityVerified,
        VerificationFailed,
        ToolCalled,
        ToolResulted,
        EscalationSignalDetected,
        HandoffOffered,
        HandoffAccepted,
        HandoffCompleted,
        HandoffExpired,
        HandoffDeclined,
        HumanRequested,
        OperatorJoined,
        OperatorLeft,
        CSATRecorded,
        ConversationResolved,
        SubjectErased,
        SubjectExportRequested,
    )
}


def register(cls: type[EventData]) -> type[EventData]:
    """Adds an event type (used by outer packages for their own events, e.g. delivery status)."""
    existing = EVENT_TYPES.get(cls.__name__)
    if existing is not None and existing is not cls:
        raise ValueError(f"event type {cls.__name__} is already registered")
    EVENT_TYPES[cls.__name__] = cls
    return cls


def model_for(type_name: str) -> type[EventData]:
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventTypeError(f"unknown event type {type_name!r}") from None


def parse_data(type_name: str, data: Mapping[str, Any] | EventData) -> EventData:
    """Validates a payload for `type_name`; the error names the first bad field."""
    model = model_for(type_name)
    if isinstance(data, EventData):
        if not isinstance(data, model):
            raise InvalidEventError(f"payload is a {type(data).__name__}, not {type_name}")
        return data
    if not isinstance(data, Mapping):
        raise InvalidEventError(f"{type_name}: data must be a JSON object")
    bounds.check_data(data)  # before the (recursive) validation sees it
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidEventError(f"{type_name}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """One line naming each bad field, for CLI and HTTP error bodies."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "data"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: cls.model_json_schema() for name, cls in sorted(EVENT_TYPES.items())}
