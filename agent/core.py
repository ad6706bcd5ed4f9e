"""The agent runtime: one visitor turn in, the reply and the events that record it out.

Channel-neutral on purpose. It never appends anything itself: it returns the events to
append (escalation signals, identity claims and checks, tool calls and results, a handoff
offer), and the chat wrapper (`threadline.agent.chat`) or the voice pipeline records them
together with the turn and the reply, in one atomic batch. Event ids and tool call ids are
derived from the turn's key, so re-running a turn after a crash reproduces the same ids
(the ledger makes that a no-op) and the same booking (the call id is the booking's
idempotency key).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from threadline.agent import intents as nlu
from threadline.agent.events import fallback_event
from threadline.agent.model import (
    MAX_STEPS,
    Action,
    CallTool,
    LanguageModel,
    Outcome,
    Reply,
    TurnState,
    Verify,
)
from threadline.agent.tools import Member, ToolBackend, run_tool
from threadline.handoff import signals as sig
from threadline.handoff.errors import AgentError, ToolError
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    Channel,
    EventData,
    HandoffOffered,
    IdentityClaimed,
    IdentityVerified,
    ToolCalled,
    ToolResulted,
    VerificationFailed,
)
from threadline.projections.context_model import AgentContext

log = logging.getLogger(__name__)

ACTOR = "agent"
KBA_METHOD = "kba"
KBA_LEVEL = 2
# A member verified by KBA whose phone is on file also gets that number recorded as a verified
# subject (`tel:+E164`, what SMS/PSTN routing matches), at the possession level: the same
# proof vouches for it, so the identity projection never counts it as a re-verification.
PHONE_ON_FILE_METHOD = "phone_on_file"
PHONE_ON_FILE_LEVEL = 1
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# Account data needs at least knowledge-level verification (a level-1 possession check such
# as a known phone number is not enough to read claims).
MEMBER_DATA_LEVEL = 2
# After this many failed verifications the chat stops trying (voice can take over).
MAX_VERIFICATION_FAILURES = 5
VOICE_CHANNELS: frozenset[Channel] = frozenset({"webrtc", "pstn"})
# Channels whose legs a conversation can gain by matching the sender's phone number.
NUMBER_LINKED: frozenset[Channel] = frozenset({"sms", "whatsapp", "pstn"})
OFFER_SENTENCE = (
    'If it\'s easier, we can continue on a voice call right here: just press "Switch to voice".'
)
# The offer's wording when the reply already speaks of a call (said once, not twice).
OFFER_BUTTON = 'Just press "Switch to voice" to start the call.'
# A person was asked for: the call on offer is with the AI, and the offer says so.
PERSON_OFFER_SENTENCE = (
    "If you'd like to go on meanwhile, I can continue with you on a voice call (with me, "
    'the assistant, not a person): just press "Switch to voice".'
)
# What happens next when the visitor asks for a person and no operator desk answers for
# the agent (the served app's HumanDesk replaces this with the queue place or a callback):
# honest that the agent cannot bring a person in itself, and never a dead end.
PERSON_NEXT_CHAT = (
    "You'd like a person from our team, and I've noted that in this conversation. I can't "
    "bring a colleague into this chat myself, so here is what happens next: I can book you "
    'a callback from the team at a time that suits you (just say "book a callback"), or you '
    "can leave a message here and the team will read it and reply."
)
PERSON_NEXT_VOICE = (
    "You'd like a person from our team, and I've noted that on this call. I can't transfer "
    "you to a colleague myself, so I can book you a callback from the team at a time that "
    'suits you: just say "book a callback". Or tell me your message and the team will get '
    "back to you."
)


def person_next(channel: Channel) -> str:
    return PERSON_NEXT_VOICE if channel in VOICE_CHANNELS else PERSON_NEXT_CHAT


_MENTIONS_CALL = re.compile(r"\b(?:voice\s+)?call\b", re.I)
_EVENT_IDS = uuid.UUID("0b5e4a8e-8f7d-4c51-9d3f-61a2c3e4b5d6")


def event_id(turn_key: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_IDS, f"{turn_key}/{name}")


@dataclass(frozen=True, slots=True)
class AgentTurn:
    reply: str
    events: list[NewEvent]
    signals: list[sig.Signal] = field(default_factory=list)
    handoff_offered: str | None = None
    model: str = "offline"


class Agent:
    def __init__(
        self,
        model: LanguageModel,
        tools: ToolBackend,
        *,
        fallback: LanguageModel | None = None,
        settings: HandoffSettings | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.tools = tools
        self.settings = settings or HandoffSettings()
        self.clock = clock or (lambda: datetime.now(UTC))

    def respond(
        self,
        context: AgentContext,
        text: str,
        *,
        channel: Channel,
        turn_key: str,
        leg_id: str | None = None,
        turn_position: int | None = None,
    ) -> AgentTurn:
        """The reply to `text` and the events recording how it was reached. `turn_key` must
        be stable for the turn (the visitor message's event id, the utterance's id)."""
        today = self.clock().date()
        member = self._member(context, leg_id)
        state = TurnState(
            context=context,
            text=text,
            channel=channel,
            turn_position=turn_position,
            member=member,
            signals=[],
            today=today,
            verification_locked=context.verification.failures >= MAX_VERIFICATION_FAILURES,
        )
        state.signals = sig.detect(
            text,
            earlier_visitor_turns=state.earlier_visitor_turns,
            recent_failures=self._recent_failures(context),
        )
        recorder = _Recorder(turn_key, leg_id)
        for s in state.signals:
            recorder.add(s.to_event())
        model, answer = self.model, None
        while answer is None:
            try:
                answer = self._loop(model, state, recorder, today)
            except AgentError as exc:
                if self.fallback is None or model is self.fallback:
                    raise
                log.warning("agent model %s failed (%s); using %s", model.name, exc, "fallback")
                recorder.add(fallback_event(model, "reply", exc, self.clock()))
                model = self.fallback
        reply = answer.text.strip() or "Sorry, could you say that again?"
        offered = self._maybe_offer(context, state, recorder, answer.offer)
        if offered is not None and sig.asks_for_person(state.signals) is not None:
            reply = f"{reply} {PERSON_OFFER_SENTENCE}"
        elif offered is not None and OFFER_SENTENCE not in reply:
            said_call = _MENTIONS_CALL.search(reply)
            reply = f"{reply} {OFFER_BUTTON if said_call else OFFER_SENTENCE}"
        elif offered is None and answer.offer == "explicit_request" and _offer_open(context):
            # The visitor asks again while an offer stands: point to it, never a bare promise.
            reply = f"{reply} {OFFER_BUTTON}"
        return AgentTurn(reply, recorder.events, state.signals, offered, model.name)

    # -- the loop -------------------------------------------------------------------------
    def _loop(
        self, model: LanguageModel, state: TurnState, recorder: _Recorder, today: date
    ) -> Reply:
        for _ in range(MAX_STEPS + 1):
            action: Action = model.step(state)
            if isinstance(action, Reply):
                return action
            if len(state.steps) >= MAX_STEPS:
                break
            if isinstance(action, Verify):
                state.steps.append(self._verify(action, state, recorder))
            elif isinstance(action, CallTool):
                state.steps.append(self._call(action, state, recorder, today))
        return Reply("Sorry, I couldn't finish that. Could you ask me again in a different way?")

    def _verify(self, action: Verify, state: TurnState, recorder: _Recorder) -> Outcome:
        member = self.tools.find_member(action.identifier)
        subject = member.member_id if member else action.identifier.strip().upper()[:200]
        recorder.add(IdentityClaimed(method=KBA_METHOD, subject=subject or "unknown"))
        dates = nlu.parse_dob(action.date_of_birth)
        if member is None:
            reason = "unknown_member"
        elif date.fromisoformat(member.date_of_birth) not in dates:
            reason = "details_mismatch"
        else:
            recorder.add(
                IdentityVerified(method=KBA_METHOD, level=KBA_LEVEL, subject=member.member_id)
            )
            if member.phone and _E164.fullmatch(member.phone):
                on_file = IdentityVerified(
                    method=PHONE_ON_FILE_METHOD,
                    level=PHONE_ON_FILE_LEVEL,
                    subject=f"tel:{member.phone}",
                )
                recorder.add(on_file)
            state.member = member
            return Outcome(action, verified=True)
        recorder.add(VerificationFailed(method=KBA_METHOD, reason=reason))
        failures = (
            state.context.verification.failures
            + 1
            + sum(1 for o in state.steps if isinstance(o.action, Verify) and not o.verified)
        )
        state.verification_locked = failures >= MAX_VERIFICATION_FAILURES
        return Outcome(action, verified=False)

    def _call(
        self, action: CallTool, state: TurnState, recorder: _Recorder, today: date
    ) -> Outcome:
        call_id = f"{recorder.turn_key}:{len(recorder.events)}"[:200]
        arguments = _json_safe(action.arguments)
        recorder.add(ToolCalled(call_id=call_id, name=action.name[:200], arguments=arguments))
        try:
            result = run_tool(
                self.tools,
                action.name,
                arguments,
                member=state.member,
                call_id=call_id,
                age=_age(state.member, today),
            )
        except ToolError as exc:
            recorder.add(ToolResulted(call_id=call_id, error=str(exc)[:2000]))
            return Outcome(action, call_id, error=str(exc))
        except Exception as exc:  # a broken backend is data for the visitor, not a crash
            log.exception("tool %s failed", action.name)
            error = f"the {action.name} service is unavailable right now"
            recorder.add(ToolResulted(call_id=call_id, error=f"{error} ({type(exc).__name__})"))
            return Outcome(action, call_id, error=error)
        recorder.add(ToolResulted(call_id=call_id, result=result))
        return Outcome(action, call_id, result=result)

    # -- context helpers ------------------------------------------------------------------
    def _member(self, context: AgentContext, leg_id: str | None = None) -> Member | None:
        v = context.verification
        if v.level < MEMBER_DATA_LEVEL or not v.subject:
            return None
        leg = next((g for g in context.legs if g.leg_id == leg_id), None)
        if leg is not None and leg.channel in NUMBER_LINKED and leg.leg_id not in v.legs:
            # Joined by sender number only: numbers are spoofable, so the level reached on
            # another leg is not this sender's until they verify here (or present a token).
            return None
        return self.tools.find_member(v.subject)

    @staticmethod
    def _recent_failures(context: AgentContext) -> int:
        visitor = [t.position for t in context.recent_turns if t.role == "visitor"]
        since = visitor[-2] if len(visitor) >= 2 else 0
        tool_errors = sum(
            1 for c in context.tool_calls if c.status == "error" and c.position > since
        )
        unverified_failures = 0 if context.verified else context.verification.failures
        return min(3, tool_errors + unverified_failures)

    def _maybe_offer(
        self,
        context: AgentContext,
        state: TurnState,
        recorder: _Recorder,
        requested: str | None = None,
    ) -> str | None:
        """Records the HandoffOffered a signal (or the reply itself, `requested`) calls for."""
        if state.channel in VOICE_CHANNELS:
            return None
        if context.active_handoff is not None:
            return None
        if any(leg.channel in VOICE_CHANNELS for leg in context.open_legs):
            return None
        best = sig.should_offer(state.signals, self.settings.escalation_threshold)
        reason = best.kind if best is not None else requested
        if reason is None:
            return None
        declined = any(
            h.status == "declined" and h.reason != "superseded" for h in context.handoffs
        )
        if declined and reason not in sig.EXPLICIT_KINDS:
            return None  # after a "no thanks", only the visitor's own request re-offers
        handoff_id = f"ho_{event_id(recorder.turn_key, 'offer').hex}"
        recorder.add(HandoffOffered(handoff_id=handoff_id, channel="webrtc", reason=reason))
        return handoff_id


def _offer_open(context: AgentContext) -> bool:
    active = context.active_handoff
    return active is not None and active.status == "offered"


class _Recorder:
    def __init__(self, turn_key: str, leg_id: str | None) -> None:
        self.turn_key = turn_key
        self.leg_id = leg_id
        self.events: list[NewEvent] = []

    def add(self, data: EventData) -> None:
        name = f"{len(self.events)}:{type(data).__name__}"
        self.events.append(
            NewEvent(
                type(data).__name__,
                data,
                event_id=event_id(self.turn_key, name),
                leg_id=self.leg_id,
                actor=ACTOR,
            )
        )


def _age(member: Member | None, today: date) -> int | None:
    if member is None:
        return None
    born = date.fromisoformat(member.date_of_birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _json_safe(arguments: dict[str, Any]) -> dict[str, Any]:
    """Model-supplied arguments, reduced to JSON values (a model may send anything)."""
    try:
        safe = json.loads(json.dumps(arguments, default=str))
    except (TypeError, ValueError):
        return {}
    return safe if isinstance(safe, dict) else {}
