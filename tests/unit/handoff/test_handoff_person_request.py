"""Asking for a person in words no rule names, with the agent alone (no operator desk): the
agent says a person is needed and what happens next, never "I can carry on with you on a
voice call"; the desk and the signals agree on what a request for a person is."""

from __future__ import annotations

import pytest

from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, add
from threadline.agent.chat import ChatAgent
from threadline.agent.core import PERSON_NEXT_CHAT, PERSON_NEXT_VOICE
from threadline.agent.factory import build_agent
from threadline.agent.offline import VOICE_PROMISE
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.voice import VoiceAgent
from threadline.handoff import human
from threadline.handoff.person_request import person_request
from threadline.handoff.signals import asks_for_person, detect
from threadline.ledger.events import LegOpened
from threadline.ledger.store import Ledger

ASKS = [
    "is there a real human I can talk to",
    "put me through to your staff",
    "I'd rather deal with a person",
    "Could I have a word with one of your colleagues?",
    "let me talk to a real one, not a bot",
    "i don't want to talk to a machine",
    "can someone from your team contact me",
    "could a member of your team help me instead",
    "am I chatting with a bot? I need a proper person",
    "I would prefer a human",
    "transfer me please",
    "no more bots please",
    "can a human being look at this",
    "is a human available?",
    "i would like to be transferred to a person",
    "I'm done with this bot",
    "Is there anyone I can talk to?",
    "hand me over to a human please",
]
NOT_ASKING = [
    "call me back tomorrow",
    "could someone phone me about this",  # a call, not a person
    "my agent number is 12",
    "I spoke to your agent yesterday and she said it was fine",
    "I need to talk to my manager first",
    "I'm not a robot",
    "it's not the machine, it's the pipe",
    "I need someone to pick up the parcel",
    "the travel agent booked my flight",
    "I have an agent who handles my policy",
    "the staff portal is down",
    "please transfer me 50 dollars",
    "the money was transferred to a person I don't know",
    "is the team here on saturdays",
    "is there anyone who can tell me the price",
    "my husband will talk to his agent",
    "I talked to a person yesterday",
    "can someone explain the deductible",
]


@pytest.mark.parametrize("text", ASKS)
def test_signals_and_desk_agree_on_a_request_for_a_person(text: str) -> None:
    assert person_request(text) is not None
    assert asks_for_person(detect(text)) is not None
    assert human.asks_for_person(text)


@pytest.mark.parametrize("text", NOT_ASKING)
def test_not_a_request_for_a_person(text: str) -> None:
    assert person_request(text) is None, person_request(text)
    assert asks_for_person(detect(text)) is None
    assert not human.asks_for_person(text)


@pytest.mark.parametrize("text", [*ASKS, "Can I speak to someone please?"])
def test_the_agent_alone_says_a_person_is_needed_and_what_happens_next(
    text: str, ledger: Ledger, tools: SqlToolBackend
) -> None:
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW))
    reply = chat.visitor_turn("A", text, leg_id=CHAT_LEG).reply or ""
    assert VOICE_PROMISE not in reply
    assert reply.startswith(PERSON_NEXT_CHAT)
    assert "book a callback" in reply  # a next step, not a dead end
    signals = [
        e.data.model_dump() for e in ledger.read("A") if e.type == "EscalationSignalDetected"
    ]
    assert [s["signal"] for s in signals] == ["explicit_request_human"]
    # A voice offer may stand as a way to go on meanwhile, but it says the call is the AI.
    offered = any(e.type == "HandoffOffered" for e in ledger.read("A"))
    assert offered == ("not a person" in reply)


def test_the_callback_it_offers_can_be_booked(ledger: Ledger, tools: SqlToolBackend) -> None:
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW))

    def say(text: str) -> str:
        return chat.visitor_turn("A", text, leg_id=CHAT_LEG).reply or ""

    say("My date of birth is 1984-03-12 and my member number is MBR-100234")
    assert say("I'd rather deal with a person").startswith(PERSON_NEXT_CHAT)
    assert "next free times" in say("book a callback")
    assert "Monday 23 November at 09:00" in say("Monday please, book it")


def test_on_a_voice_leg_a_person_is_not_answered_with_a_call(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    add(ledger, "A", LegOpened(channel="webrtc"), "leg_voice")
    voice = VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW))
    turn = voice.turn("A", "leg_voice", "is there a real human I can talk to")
    assert turn.reply == PERSON_NEXT_VOICE
    assert turn.handoff_offered is None
