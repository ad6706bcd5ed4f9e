"""The chat side of the agent: a visitor message in, the reply out, everything recorded.

One turn appends, in order: the visitor's MessagePosted (idempotent on its message id),
then — in one atomic batch, at the version the agent read — the agent's signals, identity
steps, tool calls and results, a handoff offer if any, and the agent's MessagePosted. If
another writer got in between, the turn is re-run on the fresh stream (tools are
idempotent per call id). A repeated message id returns the reply already recorded for it;
if the process died between the two appends, the repeat runs the agent and records it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID, uuid4

from threadline.agent.core import Agent, event_id
from threadline.handoff.errors import AgentError
from threadline.handoff.human import HumanDesk
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import ConcurrencyConflictError, IdempotencyConflictError
from threadline.ledger.events import Channel, HandoffOffered, MessagePosted, parse_data
from threadline.ledger.serial import ConversationLocks
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context

MAX_ATTEMPTS = 8
MAX_TEXT = 8000


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """Same fields as the API's `threadline.channels.ports.TurnResult`."""

    position: int  # of the visitor's message
    reply: str | None
    duplicate: bool = False
    handoff_offered: str | None = None


def reply_event_id(message_id: UUID) -> UUID:
    return event_id(str(message_id), "reply")


def offer_id(message_id: UUID) -> str:
    return f"ho_{event_id(str(message_id), 'offer').hex}"


class ChatAgent:
    def __init__(self, ledger: Ledger, agent: Agent, desk: HumanDesk | None = None) -> None:
        self.ledger = ledger
        self.agent = agent
        self.desk = desk  # a person can take over (handoff/human.py); None: AI only
        # Turns on one conversation are queued (each sees the one before it answered), so
        # simultaneous messages are answered one after another instead of racing.
        self._turns = ConversationLocks()

    def respond(
        self, conversation_id: str, text: str, leg_id: str | None = None, channel: Channel = "chat"
    ) -> str:
        """The agent's reply to a visitor chat message (recording both)."""
        return self.visitor_turn(conversation_id, text, leg_id=leg_id).reply or ""

    def visitor_turn(
        self,
        conversation_id: str,
        text: str,
        *,
        leg_id: str | None = None,
        message_id: UUID | None = None,
    ) -> ChatTurn:
        message_id = message_id or uuid4()
        with self._turns.hold(conversation_id):
            return self._turn(conversation_id, text, leg_id, message_id)

    def _turn(
        self, conversation_id: str, text: str, leg_id: str | None, message_id: UUID
    ) -> ChatTurn:
        posted = self.ledger.append(
            conversation_id,
            NewEvent(
                "MessagePosted",
                # parse_data: a bad text is the ledger's InvalidEventError (a 4xx at the edge)
                parse_data("MessagePosted", {"role": "visitor", "text": text}),
                event_id=message_id,
                leg_id=leg_id,
                actor="visitor",
            ),
        )
        if posted.duplicate:
            done = self._recorded(conversation_id, posted.position, message_id)
            if done is not None:
                return done
        for attempt in range(1, MAX_ATTEMPTS + 1):
            stream = self.ledger.read(conversation_id)
            ctx = build_context(stream)
            held = self.desk.intercept(stream, text) if self.desk else None
            if held is not None and held.reply is None:
                return ChatTurn(posted.position, None, posted.duplicate)  # an operator holds it
            channel: Channel = next(
                (leg.channel for leg in ctx.legs if leg.leg_id == leg_id), "chat"
            )
            turn = self.agent.respond(
                ctx,
                text,
                channel=channel,
                turn_key=str(message_id),
                leg_id=leg_id,
                turn_position=posted.position,
            )
            if self.desk is not None:
                said, extra = self.desk.amend(stream, turn.reply, turn.events, held)
                turn = replace(turn, reply=said, events=extra)
            reply = NewEvent(
                "MessagePosted",
                MessagePosted(role="agent", text=turn.reply[:MAX_TEXT]),
                event_id=reply_event_id(message_id),
                leg_id=leg_id,
                actor="agent",
            )
            # Other writers (another process, a voice leg) kept getting in first: the last
            # attempt answers at the head rather than leave the stored message unanswered.
            expected = ctx.last_position if attempt < MAX_ATTEMPTS else None
            try:
                self.ledger.append_batch(
                    conversation_id, [*turn.events, reply], expected_version=expected
                )
            except ConcurrencyConflictError:
                continue
            except IdempotencyConflictError:
                # Another worker answered this very message first; its answer stands.
                done = self._recorded(conversation_id, posted.position, message_id)
                if done is None:
                    raise
                return done
            return ChatTurn(posted.position, turn.reply, posted.duplicate, turn.handoff_offered)
        raise AgentError(
            "the conversation is too busy; please send the message again"
        )  # unreachable

    def _recorded(self, conversation_id: str, position: int, message_id: UUID) -> ChatTurn | None:
        reply_id, offer = reply_event_id(message_id), offer_id(message_id)
        text: str | None = None
        offered: str | None = None
        for e in self.ledger.read(conversation_id, after=position):
            if e.event_id == reply_id and isinstance(e.data, MessagePosted):
                text = e.data.text
            elif isinstance(e.data, HandoffOffered) and e.data.handoff_id == offer:
                offered = offer
        if text is None:
            return None
        return ChatTurn(position, text, True, offered)
