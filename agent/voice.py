"""The voice side of the agent, for the media pipeline.

The pipeline records what was heard (UtteranceTranscribed) and what was said (AgentSpoke,
with barge-in) itself; this wrapper runs the same agent on the transcribed text and appends
only the agent's own steps (signals, identity, tools) between the two. Voice legs never get
a handoff offer (they are the voice channel).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import uuid4

from threadline.agent.core import Agent, AgentTurn
from threadline.handoff.errors import AgentError
from threadline.handoff.human import HumanDesk, call_recap
from threadline.ledger.errors import ConcurrencyConflictError
from threadline.ledger.events import Channel
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context
from threadline.projections.human import holder_of

MAX_ATTEMPTS = 8


class VoiceAgent:
    def __init__(self, ledger: Ledger, agent: Agent, desk: HumanDesk | None = None) -> None:
        self.ledger = ledger
        self.agent = agent
        self.desk = desk  # a person can take over (handoff/human.py); None: AI only

    def turn(
        self,
        conversation_id: str,
        leg_id: str,
        text: str,
        *,
        turn_key: str | None = None,
        turn_position: int | None = None,
        channel: Channel = "webrtc",
    ) -> AgentTurn:
        """Runs the agent on a transcribed utterance, appends its steps, returns the turn
        (speak `turn.reply`, then record AgentSpoke). Blocking: call it off the event loop."""
        key = turn_key or f"voice-{uuid4()}"
        for _ in range(MAX_ATTEMPTS):
            events = self.ledger.read(conversation_id)
            if holder_of(events) is not None:
                # A person holds the conversation (joined from the console): the AI does not
                # answer on the call either, as in the chat (HumanDesk.intercept).
                return AgentTurn("", [])
            # Asked for a person on the call: queued like the chat (HumanRequested), with the
            # next step worded for a call.
            asked = self.desk.intercept(events, text, voice=True) if self.desk else None
            ctx = build_context(events)
            turn = self.agent.respond(
                ctx, text, channel=channel, turn_key=key, leg_id=leg_id, turn_position=turn_position
            )
            if asked is not None and asked.reply is not None:
                extra = [replace(e, leg_id=leg_id) for e in asked.new_events()]
                turn = replace(turn, reply=asked.reply, events=[*turn.events, *extra])
            elif self.desk is not None:
                # A strong frustration or compliance signal on the call asks for a person
                # too, as in the chat (HumanDesk.amend).
                said, out = self.desk.escalate(events, turn.reply, turn.events, voice=True)
                extra = [replace(e, leg_id=leg_id) for e in out[len(turn.events) :]]
                turn = replace(turn, reply=said, events=[*turn.events, *extra])
            # Back from an operator on this call: the first reply carries what they said
            # (the chat path does the same with their messages, HumanDesk.amend).
            if recap := call_recap(events, leg_id):
                turn = replace(turn, reply=f"{recap} {turn.reply}")
            if not turn.events:
                return turn
            try:
                self.ledger.append_batch(
                    conversation_id, turn.events, expected_version=ctx.last_position
                )
            except ConcurrencyConflictError:
                continue
            return turn
        raise AgentError("the conversation is too busy; please say that again")

    def handler(
        self, conversation_id: str, leg_id: str, channel: Channel = "webrtc"
    ) -> VoiceTurnHandler:
        return VoiceTurnHandler(self, conversation_id, leg_id, channel)


class VoiceTurnHandler:
    """`await handler(text)` → the reply to speak. Runs the blocking agent in a thread so
    the media loop never stalls (see the voice notes: a blocking call stalls RTP)."""

    def __init__(self, voice: VoiceAgent, conversation_id: str, leg_id: str, channel: Channel):
        self.voice = voice
        self.conversation_id = conversation_id
        self.leg_id = leg_id
        self.channel = channel

    async def __call__(
        self, text: str, *, turn_key: str | None = None, turn_position: int | None = None
    ) -> str:
        turn = await asyncio.to_thread(
            self.voice.turn,
            self.conversation_id,
            self.leg_id,
            text,
            turn_key=turn_key,
            turn_position=turn_position,
            channel=self.channel,
        )
        return turn.reply
