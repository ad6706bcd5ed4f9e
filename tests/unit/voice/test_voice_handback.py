"""A person on the voice path (real ledger, offline agent, real SQLite tool tables): after an
operator hands a call back, the AI's first spoken reply is made from the replayed stream
including what the operator was heard to say (the voice counterpart of the chat's recap);
asking for a person on a call queues like the chat; while a person holds, the AI is quiet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import add, start_chat
from threadline.agent.factory import build_agent
from threadline.agent.voice import VoiceAgent
from threadline.app.events import register_event_types
from threadline.channels.voice.bridge_events import OperatorJoinedCall, OperatorLeftCall
from threadline.handoff.human import HumanDesk
from threadline.ledger.events import (
    AgentSpoke,
    EscalationSignalDetected,
    HumanRequested,
    LegOpened,
    OperatorJoined,
    Role,
    UtteranceTranscribed,
)
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.human import QueueIndex

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
VOICE = "leg_voice"
SAID = "I have moved your appointment to Monday at nine and noted the new address"


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    register_event_types()
    store = open_ledger("memory://")
    start_chat(store, "A")
    add(store, "A", LegOpened(channel="webrtc"), VOICE)
    yield store
    store.close()


@pytest.fixture
def voice(ledger: Ledger) -> Iterator[VoiceAgent]:
    with seeded_tools(NOW) as tools:
        yield VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW))


def heard(role: Role, text: str, *, low: bool = False) -> UtteranceTranscribed:
    return UtteranceTranscribed(
        role=role,
        text=text,
        start_ms=0,
        end_ms=900,
        confidence=0.3 if low else 0.9,
        low_confidence=low,
    )


def operator_on_the_call(ledger: Ledger, *said: UtteranceTranscribed) -> None:
    add(ledger, "A", OperatorJoinedCall(operator="alice", leg_id=VOICE, joined_at=NOW), VOICE)
    for utterance in said:
        add(ledger, "A", utterance, VOICE)
    add(ledger, "A", OperatorLeftCall(operator="alice", leg_id=VOICE, left_at=NOW), VOICE)


def test_the_first_reply_after_the_handback_uses_the_operators_words(
    ledger: Ledger, voice: VoiceAgent
) -> None:
    operator_on_the_call(
        ledger, heard("visitor", "can you change my address"), heard("operator", SAID)
    )
    first = voice.turn("A", VOICE, "thanks, what else do I need to do?")
    assert f'alice said: "{SAID}"' in first.reply
    assert "can you change my address" not in first.reply  # the visitor's words are not hers
    # A "say that again?" in between does not use the recap up ...
    add(ledger, "A", AgentSpoke(text="Sorry, I didn't catch that."), VOICE)
    assert SAID in voice.turn("A", VOICE, "what else do I need to do?").reply
    # ... once it has been spoken on the call, the AI does not repeat it.
    add(ledger, "A", AgentSpoke(text=first.reply), VOICE)
    again = voice.turn("A", VOICE, "and when is it?")
    assert SAID not in again.reply


def test_doubtful_or_no_operator_words_give_no_recap(ledger: Ledger, voice: VoiceAgent) -> None:
    operator_on_the_call(ledger, heard("operator", "mm the sudanese", low=True))
    assert "said:" not in voice.turn("A", VOICE, "hello?").reply


def test_another_legs_handback_is_not_this_calls(ledger: Ledger, voice: VoiceAgent) -> None:
    add(ledger, "A", LegOpened(channel="webrtc"), "leg_other")
    operator_on_the_call(ledger, heard("operator", SAID))
    assert SAID not in voice.turn("A", "leg_other", "hello?").reply


class Online:
    """How many operators the console's presence table would report."""

    def __init__(self, n: int) -> None:
        self.n = n

    def available_count(self, tenant: str | None) -> int:
        return self.n


@pytest.mark.parametrize("online", [0, 1])
def test_asking_for_a_person_on_a_call_queues_like_the_chat(ledger: Ledger, online: int) -> None:
    with seeded_tools(NOW) as tools:
        desk = HumanDesk(QueueIndex(ledger), Online(online), clock=lambda: NOW)
        voice = VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW), desk)
        turn = voice.turn("A", VOICE, "I'd rather deal with a real person")
    requested = [e for e in ledger.read("A") if e.type == "HumanRequested"]
    assert len(requested) == 1
    assert requested[0].leg_id == VOICE
    assert "keep typing" not in turn.reply  # worded for a call
    if online:
        assert "number 1 in the queue" in turn.reply
        assert "stay on the line" in turn.reply
    else:
        assert turn.reply == HumanDesk.nobody_online(voice=True)
    # Once the operator holds the conversation, the AI says nothing on the call either.
    add(ledger, "A", OperatorJoined(operator="alice", joined_at=NOW), None)
    before = ledger.version("A")
    assert voice.turn("A", VOICE, "hello?").reply == ""
    assert ledger.version("A") == before


@pytest.mark.parametrize("online", [0, 1])
def test_a_strong_frustration_signal_on_a_call_asks_for_a_person(
    ledger: Ledger, online: int
) -> None:
    with seeded_tools(NOW) as tools:
        desk = HumanDesk(QueueIndex(ledger), Online(online), clock=lambda: NOW)
        voice = VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW), desk)
        turn = voice.turn("A", VOICE, "THIS IS RIDICULOUS, I ALREADY TOLD YOU THREE TIMES, USELESS")
    stream = ledger.read("A")
    signals = [e.data.signal for e in stream if isinstance(e.data, EscalationSignalDetected)]
    assert "frustration_spike" in signals  # the agent saw it, on the call as in the chat
    requested = [e for e in stream if isinstance(e.data, HumanRequested)]
    if online:
        assert [getattr(e.data, "reason", None) for e in requested] == ["frustration_spike"]
        assert requested[0].leg_id == VOICE
        assert "number 1 in the queue" in turn.reply
        assert "stay on the line" in turn.reply
        assert "keep typing" not in turn.reply
    else:
        # Nobody to pass the caller to: the AI's own answer stands, no queue entry.
        assert requested == []
        assert "queue" not in turn.reply
