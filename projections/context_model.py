"""The agent context model: what an agent (chat or voice, LLM or offline) needs to act.

Frozen and JSON-serialisable; built by `projections.context.build_context`. Collections are
bounded (the `MAX_*` constants) so a context stays small however long the conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from threadline.ledger import events as ev
from threadline.projections.entities import EntityKind

MAX_TURNS = 20
MAX_ENTITIES = 64
MAX_QUESTIONS = 8
MAX_REQUESTS = 8
MAX_TOOL_CALLS = 32
MAX_SIGNALS = 16
MAX_HANDOFFS = 16
MAX_LEGS = 32

TurnKind = Literal["message", "utterance", "speech"]
HandoffStatus = Literal["offered", "accepted", "completed", "expired", "declined"]
ToolStatus = Literal["pending", "ok", "error"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Topic(_Frozen):
    """A short noun phrase that reads after "your": "January claim", "dental insurance claim"."""

    phrase: str
    noun: str
    position: int
    # From a question or after a cue ("about my …"): only such a mention replaces a topic.
    explicit: bool = False


class Question(_Frozen):
    text: str
    position: int
    channel: ev.Channel | None
    answered: bool = False


class Request(_Frozen):
    """A visitor sentence saying what they want or what went wrong, as written."""

    text: str
    position: int
    channel: ev.Channel | None


class Entity(_Frozen):
    """One thing mentioned, deduplicated on (kind, value); `text` is the first surface form."""

    kind: EntityKind
    value: str
    text: str
    position: int
    last_position: int
    mentions: int = 1
    role: ev.Role


class Verification(_Frozen):
    """The highest verification reached; `leg_id`/`channel` say where it happened."""

    level: int = 0
    method: str | None = None
    subject: str | None = None
    leg_id: str | None = None
    channel: ev.Channel | None = None
    position: int | None = None
    claimed_subject: str | None = None
    claimed_method: str | None = None
    failures: int = 0
    last_failure_reason: str | None = None
    # Legs with an identity check of their own (proved there, or a level inherited through a
    # handoff token). A leg linked by sender number alone is not among them.
    legs: tuple[str, ...] = ()


class ToolCall(_Frozen):
    call_id: str
    name: str
    arguments: dict[str, JsonValue]
    status: ToolStatus = "pending"
    result: JsonValue = None
    error: str | None = None
    position: int
    result_position: int | None = None


class Signal(_Frozen):
    signal: ev.SignalKind
    score: float
    evidence: str
    position: int
    channel: ev.Channel | None


class Handoff(_Frozen):
    handoff_id: str
    channel: ev.HandoffChannel
    status: HandoffStatus
    reason: str | None = None
    offered_position: int | None = None
    accepted_position: int | None = None
    completed_position: int | None = None
    ended_position: int | None = None
    leg_id: str | None = None
    first_utterance: str | None = None


class Leg(_Frozen):
    leg_id: str
    channel: ev.Channel
    transport_ref: str | None = None
    open: bool = True
    opened_position: int
    closed_position: int | None = None
    close_reason: str | None = None


class Turn(_Frozen):
    """One conversational turn. An interrupted agent turn holds only what was spoken."""

    position: int
    role: ev.Role
    channel: ev.Channel | None
    leg_id: str | None
    kind: TurnKind
    text: str
    interrupted: bool = False
    occurred_at: datetime


class AgentContext(_Frozen):
    conversation_id: str | None = None
    tenant: str | None = None
    started_channel: ev.Channel | None = None
    visitor_ref: str | None = None
    topic: Topic | None = None
    questions: tuple[Question, ...] = ()
    requests: tuple[Request, ...] = ()  # oldest first
    entities: tuple[Entity, ...] = ()  # least recently mentioned first
    verification: Verification = Verification()
    tool_calls: tuple[ToolCall, ...] = ()
    signals: tuple[Signal, ...] = ()
    handoffs: tuple[Handoff, ...] = ()
    legs: tuple[Leg, ...] = ()
    recent_turns: tuple[Turn, ...] = ()
    turn_count: int = 0
    event_count: int = 0
    last_position: int = 0
    last_sequence: int = 0
    last_occurred_at: datetime | None = None
    resolved: bool = False
    outcome: str | None = None
    csat: int | None = None
    erased_subjects: tuple[str, ...] = ()

    @property
    def open_questions(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if not q.answered)

    @property
    def open_legs(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.open)

    @property
    def current_channel(self) -> ev.Channel | None:
        """The channel of the latest turn, else of the latest open leg, else the first one."""
        if self.recent_turns and self.recent_turns[-1].channel is not None:
            return self.recent_turns[-1].channel
        open_legs = self.open_legs
        return open_legs[-1].channel if open_legs else self.started_channel

    @property
    def verified(self) -> bool:
        return self.verification.level > 0

    @property
    def active_handoff(self) -> Handoff | None:
        """The latest handoff still in flight (offered or accepted), if any."""
        for handoff in reversed(self.handoffs):
            if handoff.status in ("offered", "accepted"):
                return handoff
        return None

    def handoff_ids(self, status: HandoffStatus) -> tuple[str, ...]:
        return tuple(h.handoff_id for h in self.handoffs if h.status == status)

    def entities_of(self, *kinds: EntityKind) -> tuple[Entity, ...]:
        """Entities of the given kinds, most recently mentioned first."""
        return tuple(e for e in reversed(self.entities) if e.kind in kinds)

    @property
    def max_signal_score(self) -> float:
        return max((s.score for s in self.signals), default=0.0)
