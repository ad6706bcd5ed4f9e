"""Agent context, folded from a conversation stream so that no agent reads raw events.

`build_context(events)` is a pure fold: the same events give an equal `AgentContext`, and
folding in chunks (`build_context(later, start=build_context(earlier))`) equals folding at
once, because the context *is* the fold state. Events of types the context does not use
(including types this code has never heard of, read as `OpaqueData`) are skipped.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.context_model import (
    MAX_ENTITIES,
    MAX_HANDOFFS,
    MAX_LEGS,
    MAX_QUESTIONS,
    MAX_REQUESTS,
    MAX_SIGNALS,
    MAX_TOOL_CALLS,
    MAX_TURNS,
    AgentContext,
    Entity,
    Handoff,
    HandoffStatus,
    Leg,
    Question,
    Request,
    Signal,
    ToolCall,
    ToolStatus,
    Topic,
    Turn,
    TurnKind,
    Verification,
)
from threadline.projections.entities import EntityKind, Found
from threadline.projections.errors import ProjectionError
from threadline.projections.text import TextFacts, analyse
from threadline.projections.topics import answers_question

__all__ = [
    "MAX_TURNS",
    "AgentContext",
    "ContextFold",
    "Entity",
    "Handoff",
    "HandoffStatus",
    "Leg",
    "Question",
    "Request",
    "Signal",
    "ToolCall",
    "ToolStatus",
    "Topic",
    "Turn",
    "TurnKind",
    "Verification",
    "build_context",
]


MEMO_LIMIT = 4096  # entries per memo of one fold (a very long replay starts it again)


class ContextFold:
    """The mutable working state behind `build_context`. Per-turn state (turns, entities,
    questions) is kept as plain lists, because a pydantic object per event would cost more
    than the fold itself; `snapshot()` freezes it into an `AgentContext`."""

    def __init__(self, start: AgentContext | None = None) -> None:
        c = start or AgentContext()
        self.head: dict[str, Any] = {
            "conversation_id": c.conversation_id,
            "tenant": c.tenant,
            "started_channel": c.started_channel,
            "visitor_ref": c.visitor_ref,
            "turn_count": c.turn_count,
            "event_count": c.event_count,
            "last_position": c.last_position,
            "last_sequence": c.last_sequence,
            "last_occurred_at": c.last_occurred_at,
            "resolved": c.resolved,
            "outcome": c.outcome,
            "csat": c.csat,
        }
        self.topic = c.topic
        # [text, position, channel, answered]
        self.questions: deque[list[Any]] = deque(
            ([q.text, q.position, q.channel, q.answered] for q in c.questions),
            maxlen=MAX_QUESTIONS,
        )
        self.unanswered = sum(1 for q in c.questions if not q.answered)
        # [text, position, channel]
        self.requests: deque[tuple[str, int, ev.Channel | None]] = deque(
            ((r.text, r.position, r.channel) for r in c.requests), maxlen=MAX_REQUESTS
        )
        # (kind, value) -> [text, position, last_position, mentions, role]
        self.entities: OrderedDict[tuple[EntityKind, str], list[Any]] = OrderedDict(
            ((e.kind, e.value), [e.text, e.position, e.last_position, e.mentions, e.role])
            for e in c.entities
        )
        self.verification = c.verification
        self.tool_calls = OrderedDict((t.call_id, t) for t in c.tool_calls)
        self.signals: deque[Signal] = deque(c.signals, maxlen=MAX_SIGNALS)
        self.handoffs = OrderedDict((h.handoff_id, h) for h in c.handoffs)
        self.legs = OrderedDict((leg.leg_id, leg) for leg in c.legs)
        self.turns: deque[tuple[Any, ...]] = deque(
            (
                (
                    t.position,
                    t.role,
                    t.channel,
                    t.leg_id,
                    t.kind,
                    t.text,
                    t.interrupted,
                    t.occurred_at,
                )
                for t in c.recent_turns
            ),
            maxlen=MAX_TURNS,
        )
        self.erased: list[str] = list(c.erased_subjects)
        # Memos local to this fold (text → analysis, question → stems): a conversation
        # repeats texts, and an open question is compared with every later agent turn. They
        # live only as long as the fold — no process-wide cache keyed by a visitor's text
        # (it would span tenants and outlive an erasure). Bounded by MEMO_LIMIT entries.
        self._facts: dict[str, TextFacts] = {}
        self._stems: dict[str, frozenset[str]] = {}

    # --- driving the fold ------------------------------------------------------------------

    def apply(self, event: RecordedEvent) -> None:
        head = self.head
        if head["conversation_id"] is None:
            head["conversation_id"] = event.conversation_id
        elif event.conversation_id != head["conversation_id"]:
            raise ProjectionError(
                f"event of conversation {event.conversation_id} folded into the context of "
                f"{head['conversation_id']}"
            )
        if event.position <= head["last_position"]:
            return  # already folded (a redelivery): folding is idempotent by position
        head["event_count"] += 1
        head["last_position"] = event.position
        head["last_sequence"] = event.sequence
        head["last_occurred_at"] = event.occurred_at
        handler = _HANDLERS.get(event.type)
        if handler is not None and isinstance(event.data, handler[0]):
            handler[1](self, event)

    def apply_all(self, events: Iterable[RecordedEvent]) -> ContextFold:
        for event in events:
            self.apply(event)
        return self

    def snapshot(self) -> AgentContext:
        return AgentContext.model_construct(
            **self.head,
            topic=self.topic,
            questions=tuple(
                Question.model_construct(text=t, position=p, channel=c, answered=a)
                for t, p, c, a in self.questions
            ),
            requests=tuple(
                Request.model_construct(text=t, position=p, channel=c) for t, p, c in self.requests
            ),
            entities=tuple(
                Entity.model_construct(
                    kind=kind, value=value, text=t, position=p, last_position=lp, mentions=n, role=r
                )
                for (kind, value), (t, p, lp, n, r) in self.entities.items()
            ),
            verification=self.verification,
            tool_calls=tuple(self.tool_calls.values()),
            signals=tuple(self.signals),
            handoffs=tuple(self.handoffs.values()),
            legs=tuple(self.legs.values()),
            recent_turns=tuple(
                Turn.model_construct(
                    position=p, role=r, channel=c, leg_id=leg, kind=k, text=t, interrupted=i,
                    occurred_at=at,
                )
                for p, r, c, leg, k, t, i, at in self.turns
            ),
            erased_subjects=tuple(self.erased),
        )  # fmt: skip

    # --- helpers ---------------------------------------------------------------------------

    def channel_of(self, leg_id: str | None) -> ev.Channel | None:
        if leg_id is not None:
            leg = self.legs.get(leg_id)
            if leg is not None:
                return leg.channel
        started: ev.Channel | None = self.head["started_channel"]
        return started

    def turn(self, e: RecordedEvent, role: ev.Role, kind: TurnKind, text: str, cut: bool) -> None:
        channel = self.channel_of(e.leg_id)
        self.head["turn_count"] += 1
        self.turns.append((e.position, role, channel, e.leg_id, kind, text, cut, e.occurred_at))
        facts = self._facts.get(text)
        if facts is None:
            if len(self._facts) >= MEMO_LIMIT:
                self._facts.clear()
            facts = self._facts[text] = analyse(text)
        if facts.entities:
            self.mention(e.position, role, facts.entities)
        if role == "visitor":
            self.ask(e.position, channel, facts)
        elif self.unanswered and facts.answer_stems is not None:
            self.answer(facts.answer_stems)

    def answer(self, stems: frozenset[str]) -> None:
        """Marks answered the open questions this agent turn speaks to (shares a content
        word with): "I can help with claims…" answers nothing about a delivery."""
        memo = self._stems
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        for q in self.questions:
            if not q[3] and answers_question(stems, q[0], memo):
                q[3] = True
                self.unanswered -= 1

    def answer_all(self) -> None:
        for q in self.questions:
            q[3] = True
        self.unanswered = 0

    def mention(self, position: int, role: ev.Role, found: tuple[Found, ...]) -> None:
        entities = self.entities
        for f in found:
            key = (f.kind, f.value)
            seen = entities.get(key)
            if seen is None:
                entities[key] = [f.text, position, position, 1, role]
                if len(entities) > MAX_ENTITIES:
                    entities.popitem(last=False)
            else:
                seen[2] = position
                seen[3] += 1
                entities.move_to_end(key)

    def ask(self, position: int, channel: ev.Channel | None, facts: TextFacts) -> None:
        for q in facts.questions:
            if len(self.questions) == MAX_QUESTIONS and not self.questions[0][3]:
                self.unanswered -= 1  # the oldest open question falls out of the window
            self.questions.append([q, position, channel, False])
            self.unanswered += 1
        for r in facts.requests:
            if not any(r == seen[0] for seen in self.requests):
                self.requests.append((r, position, channel))
        if facts.topic is None:
            return
        phrase, noun = facts.topic
        current = self.topic
        if current is not None:
            if not facts.explicit:
                return  # a passing mention ("I'm on the Gold plan") does not change the topic
            if phrase == current.phrase or (noun == current.noun and phrase == noun):
                return  # "my claim?" after "my January claim" keeps the qualifier
        self.topic = Topic.model_construct(
            phrase=phrase, noun=noun, position=position, explicit=facts.explicit
        )


# --- one handler per event type ----------------------------------------------------------


def _started(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.ConversationStarted)
    f.head.update(tenant=d.tenant, started_channel=d.channel, visitor_ref=d.visitor_ref)


def _leg_opened(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.LegOpened)
    if e.leg_id is None:
        return
    f.legs.pop(e.leg_id, None)
    f.legs[e.leg_id] = Leg.model_construct(
        leg_id=e.leg_id,
        channel=d.channel,
        transport_ref=d.transport_ref,
        open=True,
        opened_position=e.position,
        closed_position=None,
        close_reason=None,
    )
    if len(f.legs) > MAX_LEGS:
        oldest_closed = next((k for k, leg in f.legs.items() if not leg.open), None)
        del f.legs[oldest_closed if oldest_closed is not None else next(iter(f.legs))]


def _leg_closed(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.LegClosed)
    leg = f.legs.get(e.leg_id) if e.leg_id is not None else None
    if leg is not None and leg.open:
        f.legs[leg.leg_id] = leg.model_copy(
            update={"open": False, "closed_position": e.position, "close_reason": d.reason}
        )


def _message(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.MessagePosted)
    f.turn(e, d.role, "message", d.text, False)


def _utterance(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.UtteranceTranscribed)
    f.turn(e, d.role, "utterance", d.text, False)


def _spoke(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.AgentSpoke)
    text = (d.spoken_text or "") if d.interrupted else d.text
    if text.strip():
        f.turn(e, "agent", "speech", text, d.interrupted)


def _claimed(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.IdentityClaimed)
    f.verification = f.verification.model_copy(
        update={"claimed_subject": d.subject, "claimed_method": d.method}
    )


def _verified(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.IdentityVerified)
    if e.leg_id is not None and e.leg_id not in f.verification.legs:
        legs = (*f.verification.legs, e.leg_id)
        f.verification = f.verification.model_copy(update={"legs": legs})
    if d.level <= f.verification.level:
        return  # where the level was first proven; later equal or weaker checks change nothing
    f.verification = f.verification.model_copy(
        update={
            "level": d.level,
            "method": d.method,
            "subject": d.subject,
            "leg_id": e.leg_id,
            "channel": f.channel_of(e.leg_id),
            "position": e.position,
        }
    )


def _failed(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.VerificationFailed)
    f.verification = f.verification.model_copy(
        update={"failures": f.verification.failures + 1, "last_failure_reason": d.reason}
    )


def _tool_called(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.ToolCalled)
    f.tool_calls.pop(d.call_id, None)
    f.tool_calls[d.call_id] = ToolCall.model_construct(
        call_id=d.call_id,
        name=d.name,
        arguments=dict(d.arguments),
        status="pending",
        result=None,
        error=None,
        position=e.position,
        result_position=None,
    )
    if len(f.tool_calls) > MAX_TOOL_CALLS:
        f.tool_calls.popitem(last=False)


def _tool_resulted(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.ToolResulted)
    call = f.tool_calls.get(d.call_id)
    if call is None:
        return  # the call fell out of the window (or never was): nothing to attach to
    f.tool_calls[d.call_id] = call.model_copy(
        update={
            "status": "error" if d.error is not None else "ok",
            "result": d.result,
            "error": d.error,
            "result_position": e.position,
        }
    )


def _signal(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.EscalationSignalDetected)
    f.signals.append(
        Signal.model_construct(
            signal=d.signal,
            score=d.score,
            evidence=d.evidence,
            position=e.position,
            channel=f.channel_of(e.leg_id),
        )
    )


def _handoff(f: ContextFold, handoff_id: str, **update: Any) -> None:
    current = f.handoffs.pop(handoff_id, None)
    if current is None:
        current = Handoff.model_construct(
            handoff_id=handoff_id,
            channel=update.get("channel", "webrtc"),
            status=update["status"],
            reason=None,
            offered_position=None,
            accepted_position=None,
            completed_position=None,
            ended_position=None,
            leg_id=None,
            first_utterance=None,
        )
    f.handoffs[handoff_id] = current.model_copy(update=update)
    if len(f.handoffs) > MAX_HANDOFFS:
        f.handoffs.popitem(last=False)


def _offered(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffOffered)
    _handoff(
        f,
        d.handoff_id,
        status="offered",
        channel=d.channel,
        reason=d.reason,
        offered_position=e.position,
    )


def _accepted(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffAccepted)
    _handoff(f, d.handoff_id, status="accepted", channel=d.channel, accepted_position=e.position)


def _completed(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffCompleted)
    _handoff(
        f,
        d.handoff_id,
        status="completed",
        completed_position=e.position,
        ended_position=e.position,
        leg_id=d.leg_id,
        first_utterance=d.first_utterance,
    )


def _expired(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffExpired)
    _handoff(f, d.handoff_id, status="expired", ended_position=e.position)


def _declined(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffDeclined)
    _handoff(f, d.handoff_id, status="declined", ended_position=e.position)


def _csat(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.CSATRecorded)
    f.head["csat"] = d.score


def _resolved(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.ConversationResolved)
    f.head.update(resolved=True, outcome=d.outcome)
    f.answer_all()


def _erased(f: ContextFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.SubjectErased)
    # The subject's PII is unreadable from now on: drop what the context copied of it.
    if d.subject not in f.erased:
        f.erased.append(d.subject)
    v = f.verification
    update: dict[str, str | None] = {}
    if v.subject == d.subject:
        update["subject"] = None
    if v.claimed_subject == d.subject:
        update["claimed_subject"] = None
    if update:
        f.verification = v.model_copy(update=update)
    for key in [k for k in f.entities if k[0] == "name"]:
        del f.entities[key]


_Handler = Callable[[ContextFold, RecordedEvent], None]
_HANDLERS: dict[str, tuple[type[ev.EventData], _Handler]] = {
    "ConversationStarted": (ev.ConversationStarted, _started),
    "LegOpened": (ev.LegOpened, _leg_opened),
    "LegClosed": (ev.LegClosed, _leg_closed),
    "MessagePosted": (ev.MessagePosted, _message),
    "UtteranceTranscribed": (ev.UtteranceTranscribed, _utterance),
    "AgentSpoke": (ev.AgentSpoke, _spoke),
    "IdentityClaimed": (ev.IdentityClaimed, _claimed),
    "IdentityVerified": (ev.IdentityVerified, _verified),
    "VerificationFailed": (ev.VerificationFailed, _failed),
    "ToolCalled": (ev.ToolCalled, _tool_called),
    "ToolResulted": (ev.ToolResulted, _tool_resulted),
    "EscalationSignalDetected": (ev.EscalationSignalDetected, _signal),
    "HandoffOffered": (ev.HandoffOffered, _offered),
    "HandoffAccepted": (ev.HandoffAccepted, _accepted),
    "HandoffCompleted": (ev.HandoffCompleted, _completed),
    "HandoffExpired": (ev.HandoffExpired, _expired),
    "HandoffDeclined": (ev.HandoffDeclined, _declined),
    "CSATRecorded": (ev.CSATRecorded, _csat),
    "ConversationResolved": (ev.ConversationResolved, _resolved),
    "SubjectErased": (ev.SubjectErased, _erased),
}


def build_context(
    events: Iterable[RecordedEvent],
    *,
    start: AgentContext | None = None,
    upto: int | None = None,
) -> AgentContext:
    """Folds `events` (one conversation, in position order) into an `AgentContext`.

    `start` continues an earlier fold; `upto` stops after that position (point-in-time).
    """
    fold = ContextFold(start)
    for event in events:
        if upto is not None and event.position > upto:
            break
        fold.apply(event)
    return fold.snapshot()
