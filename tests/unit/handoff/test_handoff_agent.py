"""The offline agent end to end on a real ledger and real SQLite tool tables."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import uuid4

import pytest

from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, add, start_chat
from threadline.agent.chat import ChatAgent, reply_event_id
from threadline.agent.core import OFFER_SENTENCE, Agent
from threadline.agent.factory import build_agent
from threadline.agent.offline import OfflineModel
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.voice import VoiceAgent
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.errors import InvalidEventError
from threadline.ledger.events import HandoffDeclined, LegOpened
from threadline.ledger.store import Ledger, open_ledger


@pytest.fixture
def chat(ledger: Ledger, tools: SqlToolBackend) -> ChatAgent:
    return ChatAgent(ledger, build_agent(tools, clock=lambda: NOW))


def say(chat: ChatAgent, text: str, cid: str = "A") -> str:
    return chat.visitor_turn(cid, text, leg_id=CHAT_LEG).reply or ""


def types(ledger: Ledger, cid: str = "A", after: int = 0) -> list[str]:
    return [e.type for e in ledger.read(cid, after=after)]


def verify(chat: ChatAgent) -> None:
    say(chat, "Hi, I have a question about my January claim")
    say(chat, "My date of birth is 1984-03-12 and my member number is MBR-100234")


def test_claim_question_verification_and_lookup(chat: ChatAgent, ledger: Ledger) -> None:
    first = say(chat, "Hi, I have a question about my January claim")
    assert "date of birth" in first
    assert "January claim" in first
    partial = say(chat, "Sure, my date of birth is 12 March 1984")
    assert "member or policy number" in partial
    v = ledger.version("A")
    answer = say(chat, "and the policy number is POL-558812")
    assert "verified" in answer
    assert "CLM-4821" in answer
    assert "$2,340.00" in answer
    assert types(ledger, after=v) == [
        "MessagePosted",
        "IdentityClaimed",
        "IdentityVerified",  # kba, the member
        "IdentityVerified",  # phone_on_file, tel:+E164 (same proof)
        "ToolCalled",
        "ToolResulted",
        "MessagePosted",
    ]
    called, resulted = (e.data for e in ledger.read("A", after=v + 4)[:2])
    assert called.model_dump()["arguments"] == {"kind": "claim", "month": 1}
    assert resulted.model_dump()["result"][0]["reference"] == "CLM-4821"
    # A follow-up continues the topic without asking again.
    assert "itemised bill" in say(chat, "Why is it still pending?")


def test_wrong_details_are_refused_and_recorded(chat: ChatAgent, ledger: Ledger) -> None:
    say(chat, "What's the status of my claim?")
    v = ledger.version("A")
    reply = say(chat, "born 1984-03-13, member MBR-100234")
    assert "don't match" in reply
    assert "CLM" not in reply
    assert types(ledger, after=v) == [
        "MessagePosted",
        "IdentityClaimed",
        "VerificationFailed",
        "MessagePosted",
    ]
    assert ledger.read("A")[-2].data.model_dump() == {
        "method": "kba",
        "reason": "details_mismatch",
    }
    reply = say(chat, "born 1984-03-12, member MBR-999999")
    assert "don't match" in reply
    assert ledger.read("A")[-2].data.model_dump()["reason"] == "unknown_member"


def test_member_data_needs_verification(chat: ChatAgent, ledger: Ledger) -> None:
    reply = say(chat, "show me claim CLM-4821")
    assert "verify your identity" in reply
    assert "ToolCalled" not in types(ledger)


def test_quote_and_failing_tool_is_recorded_and_said(chat: ChatAgent, ledger: Ledger) -> None:
    reply = say(chat, "How much is the Silver plan with a dental rider?")
    assert "$340.00 a month" in reply  # 312 + 28
    v = ledger.version("A")
    reply = say(chat, "and a quote for the Diamond plan?")
    assert "Sorry, I couldn't price that" in reply
    assert "no plan called 'Diamond'" in reply
    result = next(e for e in ledger.read("A", after=v) if e.type == "ToolResulted")
    assert "Diamond" in (result.data.model_dump()["error"] or "")
    assert result.data.model_dump()["result"] is None


def test_broken_backend_is_an_error_result_not_a_crash(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    class Broken(SqlToolBackend):
        def __init__(self) -> None:
            super().__init__()

        def transaction(self) -> Any:
            raise ConnectionError("database is down")

        def is_unique_violation(self, exc: BaseException) -> bool:
            return False

        def close(self) -> None:
            pass

    chat = ChatAgent(ledger, Agent(OfflineModel(), Broken(), clock=lambda: NOW))
    reply = say(chat, "what would the Gold plan cost?")
    assert "unavailable" in reply
    result = next(e for e in ledger.read("A") if e.type == "ToolResulted")
    assert "ConnectionError" in (result.data.model_dump()["error"] or "")


def test_scheduling_books_and_lists(chat: ChatAgent) -> None:
    verify(chat)
    assert "next free times" in say(chat, "I'd like to book a call back")
    booked = say(chat, "Monday please, book it")
    assert "Monday 23 November at 09:00" in booked
    assert "Monday 23 November at 09:00" in say(chat, "what appointments do I have?")


def test_signals_offer_once_and_respect_a_decline(chat: ChatAgent, ledger: Ledger) -> None:
    verify(chat)
    turn = chat.visitor_turn(
        "A", "Do I need to give HIPAA authorization so my husband can discuss it?", leg_id=CHAT_LEG
    )
    assert turn.handoff_offered is not None
    assert OFFER_SENTENCE in (turn.reply or "")
    signal = next(e for e in ledger.read("A") if e.type == "EscalationSignalDetected")
    assert signal.data.model_dump()["signal"] == "compliance_step"
    # While the offer is open, no second offer.
    again = chat.visitor_turn("A", "Can I talk to someone?", leg_id=CHAT_LEG)
    assert again.handoff_offered is None
    add(ledger, "A", HandoffDeclined(handoff_id=turn.handoff_offered, reason="not now"))
    pricing = chat.visitor_turn(
        "A", "Compare the Silver plan and Gold plan with dental and vision riders", leg_id=CHAT_LEG
    )
    assert pricing.handoff_offered is None  # declined: only an explicit request re-offers
    explicit = chat.visitor_turn("A", "please just call me", leg_id=CHAT_LEG)
    assert explicit.handoff_offered is not None


def test_below_threshold_signal_is_recorded_without_offer(chat: ChatAgent, ledger: Ledger) -> None:
    turn = chat.visitor_turn(
        "A", "what's the premium of the Bronze plan with a rider?", leg_id=CHAT_LEG
    )
    assert turn.handoff_offered is None
    (signal,) = [e for e in ledger.read("A") if e.type == "EscalationSignalDetected"]
    assert signal.data.model_dump()["score"] < 0.6


def test_duplicate_message_returns_the_recorded_reply(chat: ChatAgent, ledger: Ledger) -> None:
    message_id = uuid4()
    first = chat.visitor_turn("A", "Hello", leg_id=CHAT_LEG, message_id=message_id)
    v = ledger.version("A")
    again = chat.visitor_turn("A", "Hello", leg_id=CHAT_LEG, message_id=message_id)
    assert again.duplicate
    assert again.reply == first.reply
    assert again.position == first.position
    assert ledger.version("A") == v


def test_a_turn_interrupted_after_the_visitor_message_is_completed_on_retry(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    class CrashError(Exception):
        pass

    class CrashingAgent(Agent):
        def respond(self, *args: Any, **kwargs: Any) -> Any:
            raise CrashError

    message_id = uuid4()
    with pytest.raises(CrashError):
        ChatAgent(ledger, CrashingAgent(OfflineModel(), tools)).visitor_turn(
            "A", "Hello", leg_id=CHAT_LEG, message_id=message_id
        )
    assert types(ledger)[-1] == "MessagePosted"
    healthy = ChatAgent(ledger, Agent(OfflineModel(), tools))
    turn = healthy.visitor_turn("A", "Hello", leg_id=CHAT_LEG, message_id=message_id)
    assert turn.duplicate
    assert "Ava" in (turn.reply or "")
    assert types(ledger)[-2:] == ["MessagePosted", "MessagePosted"]


def test_concurrent_turns_all_answered_exactly_once(ledger: Ledger, tools: SqlToolBackend) -> None:
    agents = [ChatAgent(ledger, Agent(OfflineModel(), tools)) for _ in range(4)]
    barrier = threading.Barrier(len(agents))

    def run(i: int, chat: ChatAgent) -> None:
        barrier.wait()
        for j in range(3):
            chat.visitor_turn("A", f"hello {i}-{j}", leg_id=CHAT_LEG)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posted = [e.data.model_dump() for e in ledger.read("A") if e.type == "MessagePosted"]
    assert sum(1 for p in posted if p["role"] == "visitor") == 12
    assert sum(1 for p in posted if p["role"] == "agent") == 12


def test_voice_turns_record_steps_but_not_speech_and_never_offer(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    add(ledger, "A", LegOpened(channel="webrtc"), "leg_voice")
    voice = VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW))
    handler = voice.handler("A", "leg_voice")
    v = ledger.version("A")
    reply = asyncio.run(handler("Can I talk to a real person about HIPAA consent?"))
    assert "this call is recorded" in reply
    assert OFFER_SENTENCE not in reply
    new = types(ledger, after=v)
    assert "HandoffOffered" not in new
    assert "MessagePosted" not in new
    assert set(new) == {"EscalationSignalDetected"}


def test_voice_after_handoff_uses_the_inherited_identity(
    ledger: Ledger, tools: SqlToolBackend, chat: ChatAgent
) -> None:
    verify(chat)
    service = HandoffService(ledger, signer=Signer(b"v" * 32, "handoff"))
    grant = service.redeem(service.request_handoff("A").token)
    voice = VoiceAgent(ledger, build_agent(tools, clock=lambda: NOW))
    turn = voice.turn("A", grant.leg_id, "what is the status of my January claim?")
    assert "CLM-4821" in turn.reply
    assert "verify" not in turn.reply.lower()
    assert "IdentityClaimed" not in [e.type for e in ledger.read("A") if e.leg_id == grant.leg_id]


@pytest.mark.parametrize("text", ["", "x" * 8001])
def test_bad_visitor_text_is_invalid_and_appends_nothing(
    chat: ChatAgent, ledger: Ledger, text: str
) -> None:
    v = ledger.version("A")
    with pytest.raises(InvalidEventError):
        chat.visitor_turn("A", text, leg_id=CHAT_LEG)
    assert ledger.version("A") == v


def test_simultaneous_messages_are_queued_and_every_one_answered(
    tools: SqlToolBackend, tmp_path: Any
) -> None:
    """Issue 17, class 11: 20 messages at once on one conversation, each stored and each
    answered (none "too busy"), on a durable store where the appends take real time."""
    store = open_ledger(f"sqlite:///{tmp_path / 'turns.db'}")
    start_chat(store, "A")
    chat = ChatAgent(store, build_agent(tools, clock=lambda: NOW))
    barrier = threading.Barrier(20)
    errors: list[Exception] = []
    ids = [uuid4() for _ in range(20)]

    def visitor(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            chat.visitor_turn("A", f"question {n}", leg_id=CHAT_LEG, message_id=ids[n])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        recorded = {e.event_id for e in store.read("A")}
        assert set(ids) <= recorded
        assert {reply_event_id(i) for i in ids} <= recorded
    finally:
        store.close()
