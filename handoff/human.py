"""Asking for a person, and keeping the AI quiet while one holds the conversation.

The chat turn path calls `HumanDesk.intercept` after the visitor's message is recorded and
before the AI runs. It answers for the AI in two cases: an operator holds the conversation
(the AI says nothing; the operator answers from the console), or the visitor asks for a
person (HumanRequested is appended with an honest next step: the queue place and expected
wait when someone is online, otherwise a callback through the scheduling tool or a message
left for the team). After an operator hands back, `recap` lets the AI's first reply carry
what the operator said, so the visitor never repeats themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from threadline.handoff.person_request import person_request
from threadline.ledger import events as ev
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.projections.human import HumanState, QueueIndex, fold_human

Clock = Callable[[], datetime]
# The operator summary for a conversation (its events, why a person was asked for): the
# events recording it, from the language-model port (`threadline.agent.lm.FallbackLM`).
Summarize = Callable[[Sequence[RecordedEvent], str], Sequence[tuple[str, ev.EventData]]]

# The reason of a HandoffOffered an operator made from the console ("call the visitor"):
# the call is with that person, not the AI.
OPERATOR_CALL = "operator_call"
OPERATOR_CALL_OPENING = (
    "You're through to our team on this call: the colleague you've been writing with is "
    "joining now."
)

VOICE_MEANWHILE = (
    " If you'd rather not wait, you can carry on with me, the assistant, on a voice call meanwhile."
)

# Escalation signals that, at this score, mean "a person should take this" by themselves.
SIGNAL_KINDS: tuple[ev.SignalKind, ...] = ("frustration_spike", "compliance_step")


def asks_for_person(text: str) -> bool:
    """The same grammar the escalation signals use (`person_request.py`), so the desk and
    the AI agree; "call me" asks for a call, not for a person."""
    return person_request(text) is not None


class Presence(Protocol):
    """How many operators are available now (the console's presence table)."""

    def available_count(self, tenant: str | None) -> int: ...


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """From `ConsoleSettings` at the composition root."""

    expected_handle_seconds: int = 180
    signal_threshold: float = 0.8


@dataclass(frozen=True, slots=True)
class Intercept:
    """What the desk decided instead of the AI: `events` to append and the reply (None: the
    operator holds the conversation, nobody automatic answers)."""

    events: tuple[tuple[str, ev.EventData], ...]
    reply: str | None

    def new_events(self) -> list[NewEvent]:
        return [NewEvent(t, d, actor="agent") for t, d in self.events]


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class HumanDesk:
    def __init__(
        self,
        queue: QueueIndex,
        presence: Presence,
        settings: DeskSettings | None = None,
        clock: Clock | None = None,
        summarize: Summarize | None = None,
    ) -> None:
        self.summarize = summarize
        self.queue = queue
        self.presence = presence
        self.settings = settings or DeskSettings()
        self._clock = clock or (lambda: datetime.now(UTC))

    def intercept(
        self, events: Sequence[RecordedEvent], text: str, *, voice: bool = False
    ) -> Intercept | None:
        """Called with the conversation's events (the visitor's turn last). `voice`: the
        turn was spoken on a call (agent/voice.py), so the next step is worded for a call."""
        state = fold_human(events)
        if state.holder is not None:
            return Intercept((), None)
        reason = self._reason(events, text)
        if reason is None:
            return None
        if state.waiting:
            return Intercept((), self._status(state, again=True, voice=voice))
        requested = ev.HumanRequested(reason=reason, requested_at=self._clock())
        recorded = (("HumanRequested", requested), *self._summary(events, reason))
        online = self.presence.available_count(state.tenant)
        if online == 0:
            return Intercept(recorded, self.nobody_online(voice=voice))
        ahead = len(self.queue.waiting(state.tenant))
        return Intercept(recorded, self._queued(ahead + 1, online, voice=voice))

    def _summary(
        self, events: Sequence[RecordedEvent], reason: str
    ) -> tuple[tuple[str, ev.EventData], ...]:
        return tuple(self.summarize(events, reason)) if self.summarize is not None else ()

    @staticmethod
    def _reason(events: Sequence[RecordedEvent], text: str) -> str | None:
        return "explicit_request" if asks_for_person(text) else None

    def amend(
        self,
        events: Sequence[RecordedEvent],
        reply: str,
        turn_events: Sequence[NewEvent],
        asked: Intercept | None = None,
    ) -> tuple[str, list[NewEvent]]:
        """The AI's own turn, completed. When the visitor asked for a person (`asked`, from
        `intercept`), the reply is the desk's honest next step instead of the AI's; a voice
        offer the AI made stays open, as a way to go on meanwhile. Otherwise a strong
        frustration or compliance signal also asks for a person when one is online (or the
        AI's answer stands), and the first reply after a handback opens with the operator's
        words."""
        out = list(turn_events)
        if asked is not None and asked.reply is not None:
            offered = any(e.type == "HandoffOffered" for e in out)
            said = asked.reply + (VOICE_MEANWHILE if offered else "")
            return said, [*out, *asked.new_events()]
        recap = self.recap(events)
        if recap:
            reply = f"{recap} {reply}"
        return self.escalate(events, reply, out)

    def escalate(
        self,
        events: Sequence[RecordedEvent],
        reply: str,
        turn_events: Sequence[NewEvent],
        *,
        voice: bool = False,
    ) -> tuple[str, list[NewEvent]]:
        """A strong frustration or compliance signal in the AI's own turn asks for a person
        when one is online (HumanRequested, and the queue place is added to the reply, worded
        for a call when `voice`); otherwise the AI's answer stands."""
        out = list(turn_events)
        reason = next(
            (
                e.data.signal
                for e in turn_events
                if isinstance(e.data, ev.EscalationSignalDetected)
                and e.data.signal in SIGNAL_KINDS
                and e.data.score >= self.settings.signal_threshold
            ),
            None,
        )
        if reason is None:
            return reply, out
        state = fold_human(events)
        online = self.presence.available_count(state.tenant)
        if state.holder is not None or state.waiting or online == 0:
            return reply, out
        ahead = len(self.queue.waiting(state.tenant))
        requested = ev.HumanRequested(reason=reason, requested_at=self._clock())
        out.append(NewEvent("HumanRequested", requested, actor="agent"))
        out.extend(NewEvent(t, d, actor="agent") for t, d in self._summary(events, reason))
        return f"{reply} {self._queued(ahead + 1, online, voice=voice)}", out

    def _status(self, state: HumanState, *, again: bool, voice: bool = False) -> str:
        place = self.queue.position_of(state.conversation_id, state.tenant) or 1
        online = self.presence.available_count(state.tenant)
        if online == 0:
            return self.nobody_online(voice=voice)
        return self._queued(place, online, again=again, voice=voice)

    def _queued(self, place: int, online: int, *, again: bool = False, voice: bool = False) -> str:
        wait = place * self.settings.expected_handle_seconds / max(1, online)
        lead = "You're still in the queue" if again else "I've asked a person to join"
        meanwhile = (
            "Please stay on the line: they will join this call."
            if voice
            else "You can keep typing here meanwhile."
        )
        return (
            f"{lead}: you're number {place} in the queue and the expected wait is about "
            f"{_minutes(wait)}. They will see everything we've said so far, so you won't "
            f"have to repeat yourself. {meanwhile}"
        )

    @staticmethod
    def nobody_online(*, voice: bool = False) -> str:
        if voice:
            return (
                "Nobody from the team is online right now, so I can't pass you to a person at "
                'the moment. I can book you a callback at a time that suits you: just say "book '
                'a callback". Or tell me your message and the team will get back to you.'
            )
        return (
            "Nobody from the team is online right now, so I can't pass you to a person at "
            'the moment. I can book you a callback at a time that suits you: say "book a '
            "callback\" and I'll find a slot. Or leave a message here and the team will "
            "read it and reply as soon as they are back."
        )

    @staticmethod
    def recap(events: Sequence[RecordedEvent]) -> str | None:
        """After an operator handed back: the first AI reply opens with what they said."""
        state = fold_human(events)
        if state.holder is not None or state.left_at is None or not state.last_operator_text:
            return None
        left = _left_position(events)
        for e in events:
            if (
                e.position > left
                and isinstance(e.data, ev.MessagePosted)
                and e.data.role == "agent"
            ):
                return None  # the AI already picked up
        name = state.holder_name or state.left_by or "our advisor"
        return f'I\'m back with you. {name} noted: "{state.last_operator_text}".'


# The call-bridge events are declared by the voice channel (channels/voice/bridge_events.py,
# an outer layer), so they are matched here by type name.
_JOINED_CALL, _LEFT_CALL = "OperatorJoinedCall", "OperatorLeftCall"
RECAP_UTTERANCES = 2
RECAP_LEAD = "I'm back with you."
RECAP_CHARS = 400


def call_recap(events: Sequence[RecordedEvent], leg_id: str) -> str | None:
    """After an operator handed a voice call back (OperatorLeftCall on `leg_id`): the AI's
    first spoken reply opens with what the operator was heard to say on the call (their
    transcribed turns; doubtful ones are left out), as the chat's `recap` does with their
    messages. None once that recap has been spoken on the leg (a "say that again?" in
    between does not count), or when they said nothing."""
    left = next((e for e in reversed(events) if e.type == _LEFT_CALL and e.leg_id == leg_id), None)
    if left is None:
        return None
    joined = max(
        (
            e.position
            for e in events
            if e.type == _JOINED_CALL and e.leg_id == leg_id and e.position < left.position
        ),
        default=0,
    )
    heard: list[str] = []
    for e in events:
        if (
            e.position > left.position
            and isinstance(e.data, ev.AgentSpoke)
            and e.data.text.startswith(RECAP_LEAD)
        ):
            return None  # the AI already picked up with it
        if (
            joined < e.position < left.position
            and isinstance(e.data, ev.UtteranceTranscribed)
            and e.data.role == "operator"
            and not e.data.low_confidence
            and e.data.text.strip()
        ):
            heard.append(e.data.text.strip())
    if not heard:
        return None
    said = " ".join(heard[-RECAP_UTTERANCES:])
    if len(said) > RECAP_CHARS:
        said = "…" + said[-RECAP_CHARS:].lstrip()
    name = str(getattr(left.data, "operator", "") or "our advisor")
    return f'{RECAP_LEAD} {name} said: "{said}".'


def _left_position(events: Sequence[RecordedEvent]) -> int:
    return max((e.position for e in events if isinstance(e.data, ev.OperatorLeft)), default=0)
