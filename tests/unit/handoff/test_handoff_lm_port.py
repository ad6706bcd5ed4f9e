"""The language-model port end to end over real HTTP (`harness/chat_completions.py`):
one `THREADLINE_LLM_*` section switches the chat reply, the first utterance of a handoff
and the operator summary at once; a slow provider times out and a failing one is retried,
and both fall back to the offline generator with a ModelFallbackUsed event in the ledger."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from harness.chat_completions import (
    ChatCompletionsServer,
    Slow,
    chat_completions_server,
    text,
    tool_call,
)
from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, january_claim_chat, start_chat
from threadline.agent.chat import ChatAgent
from threadline.agent.events import register_events
from threadline.agent.factory import build_agent
from threadline.agent.lm import FallbackLM, build_lm
from threadline.agent.settings import LanguageModelSettings
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.app.settings import load_settings
from threadline.handoff.errors import ConfigurationError
from threadline.handoff.human import HumanDesk
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context
from threadline.projections.human import QueueIndex

SIGNER = Signer(b"s" * 32, "handoff")


class Online:
    def available_count(self, tenant: str | None) -> int:
        return 1


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    register_events()
    with chat_completions_server() as s:
        yield s


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


def lm_for(server: ChatCompletionsServer, **extra: str) -> FallbackLM:
    environ = {
        "THREADLINE_LLM_PROVIDER": "openai",
        "THREADLINE_LLM_BASE_URL": server.base_url,
        "THREADLINE_LLM_MODEL": "local-test-model",
        "THREADLINE_LLM_API_KEY": "sk-test-key",
        "THREADLINE_LLM_MAX_RETRIES": "0",
        **extra,
    }
    return build_lm(load_settings(environ).llm, clock=lambda: NOW)


def fallbacks(ledger: Ledger, cid: str) -> list[dict[str, object]]:
    return [e.data.model_dump() for e in ledger.read(cid) if e.type == "ModelFallbackUsed"]


def test_one_settings_section_switches_every_use(
    server: ChatCompletionsServer, ledger: Ledger, tools: SqlToolBackend
) -> None:
    lm = lm_for(server)
    # 1. The chat reply, with a tool call through the port.
    start_chat(ledger, "A")
    server.script = [
        tool_call("quote", {"plan": "Gold"}, "call_q"),
        text("The Gold plan is priced for you below."),
    ]
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm))
    turn = chat.visitor_turn("A", "how much is the Gold plan?", leg_id=CHAT_LEG)
    assert turn.reply is not None
    assert turn.reply.startswith("The Gold plan is priced")
    assert "ToolCalled" in [e.type for e in ledger.read("A")]
    # 2. The first utterance of a handoff (the same path for every channel).
    january_claim_chat(ledger, "B")
    handoffs = HandoffService(ledger, signer=SIGNER, clock=lambda: NOW, utterances=lm)
    ticket = handoffs.request_handoff("B", leg_id=CHAT_LEG, channel="sms")
    server.script = [text("Hello again by text: your January claim is in front of me.")]
    grant = handoffs.redeem(ticket.token, "sms-1")
    assert grant.first_utterance == "Hello again by text: your January claim is in front of me."
    completed = [e for e in ledger.read("B") if e.type == "HandoffCompleted"][-1]
    assert completed.data.model_dump()["first_utterance"] == grant.first_utterance
    # 3. The operator summary when the visitor asks for a person.
    start_chat(ledger, "C")
    desk = HumanDesk(QueueIndex(ledger), Online(), clock=lambda: NOW, summarize=lm.summarize)
    server.script = [  # the desk writes the summary before the AI's own turn runs
        text("Member wants their Gold plan price explained by a person."),
        text("Of course, a colleague will join you."),
    ]
    ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm), desk).visitor_turn(
        "C", "I want to speak to a person", leg_id=CHAT_LEG
    )
    written = next(e for e in ledger.read("C") if e.type == "HandoffSummaryWritten")
    assert written.data.model_dump()["generator"] == "openai"
    assert written.data.model_dump()["text"].startswith("Member wants their Gold plan")
    # Every use went to the configured server, with the configured model and key.
    assert len(server.requests) == 5
    assert {r["model"] for r in server.requests} == {"local-test-model"}
    assert {h["authorization"] for h in server.headers} == {"Bearer sk-test-key"}
    assert not fallbacks(ledger, "A")
    assert not fallbacks(ledger, "B")
    assert not fallbacks(ledger, "C")


def test_unconfigured_model_never_calls_the_network(ledger: Ledger) -> None:
    lm = build_lm(load_settings({}).llm)
    assert lm.primary is lm.offline
    january_claim_chat(ledger, "A")
    handoffs = HandoffService(ledger, signer=SIGNER, clock=lambda: NOW, utterances=lm)
    grant = handoffs.redeem(handoffs.request_handoff("A", leg_id=CHAT_LEG).token, "pc-1")
    assert "January claim" in grant.first_utterance
    assert not fallbacks(ledger, "A")


def test_old_scattered_settings_are_refused_with_their_replacement() -> None:
    with pytest.raises(ConfigurationError, match="THREADLINE_LLM_PROVIDER"):
        load_settings({"THREADLINE_AGENT": "openai"})
    with pytest.raises(ConfigurationError, match="THREADLINE_LLM_MODEL"):
        load_settings({"THREADLINE_OPENAI_MODEL": "gpt-4o"})


def test_slow_provider_times_out_and_the_fallback_is_recorded(
    server: ChatCompletionsServer, ledger: Ledger
) -> None:
    lm = lm_for(server, THREADLINE_LLM_TIMEOUT_S="0.3")
    january_claim_chat(ledger, "A")
    handoffs = HandoffService(ledger, signer=SIGNER, clock=lambda: NOW, utterances=lm)
    ticket = handoffs.request_handoff("A", leg_id=CHAT_LEG)
    server.script = [Slow(3.0, text("Too late: your January claim."))]
    started = time.monotonic()
    grant = handoffs.redeem(ticket.token, "pc-1")
    assert time.monotonic() - started < 2.5  # it did not wait for the slow answer
    context = handoffs.context("A")
    assert "Too late" not in grant.first_utterance
    assert "January claim" in grant.first_utterance  # the grounded offline sentence
    (fallback,) = fallbacks(ledger, "A")
    assert fallback | {"at": None} == {
        "use": "first_utterance",
        "provider": "openai",
        "model": "local-test-model",
        "reason": "timeout",
        "fallback": "offline",
        "at": None,
    }
    # Recorded in the same batch as the completion, on the new leg.
    completed = next(e for e in ledger.read("A") if e.type == "HandoffCompleted")
    used = next(e for e in ledger.read("A") if e.type == "ModelFallbackUsed")
    assert used.leg_id == completed.leg_id
    assert used.position == completed.position - 1
    assert context.handoffs[-1].first_utterance == grant.first_utterance


def test_failing_provider_is_retried_then_falls_back_on_every_use(
    server: ChatCompletionsServer, ledger: Ledger, tools: SqlToolBackend
) -> None:
    lm = lm_for(server, THREADLINE_LLM_MAX_RETRIES="2")
    start_chat(ledger, "A")
    server.script = [500, 503, 502]  # the last answer is the cause recorded
    desk = HumanDesk(QueueIndex(ledger), Online(), clock=lambda: NOW, summarize=lm.summarize)
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm), desk)
    turn = chat.visitor_turn("A", "Hello", leg_id=CHAT_LEG)
    assert len(server.requests) == 3  # one try and two retries
    assert turn.reply  # the offline model answered
    server.script = [500] * 6  # the summary's three tries, then the reply's
    chat.visitor_turn("A", "I want to speak to a person", leg_id=CHAT_LEG)
    assert len(server.requests) == 9
    uses = [(f["use"], f["reason"]) for f in fallbacks(ledger, "A")]
    assert uses == [("reply", "http_502"), ("reply", "http_500"), ("summary", "http_500")]
    written = next(e for e in ledger.read("A") if e.type == "HandoffSummaryWritten")
    assert written.data.model_dump()["generator"] == "offline"
    assert "Asked for a person (explicit_request)." in written.data.model_dump()["text"]


def test_invalid_reply_is_not_used(
    server: ChatCompletionsServer, ledger: Ledger, tools: SqlToolBackend
) -> None:
    lm = lm_for(server)
    start_chat(ledger, "A")
    server.script = [text("   "), tool_call("lookup", {"kind": "claim"}, "c")]
    server.script[1]["tool_calls"][0]["function"]["arguments"] = "{not json"  # type: ignore[index]
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm))
    assert chat.visitor_turn("A", "Hello", leg_id=CHAT_LEG).reply
    assert chat.visitor_turn("A", "Hello again", leg_id=CHAT_LEG).reply
    assert [f["reason"] for f in fallbacks(ledger, "A")] == ["invalid_output", "invalid_output"]
    assert "ToolCalled" not in [e.type for e in ledger.read("A")]


def test_settings_without_a_key_still_build_a_local_provider(
    server: ChatCompletionsServer,
) -> None:
    settings = LanguageModelSettings(provider="openai", base_url=server.base_url, max_retries=0)
    lm = build_lm(settings)
    assert lm.name == "openai"
    assert lm.primary is not lm.offline


def test_offline_summary_restates_the_request_and_the_console_shows_the_recorded_one(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    from threadline.channels.console.takeover import _summary
    from threadline.projections.human import fold_human

    register_events()
    lm = build_lm(clock=lambda: NOW)
    start_chat(ledger, "A")
    desk = HumanDesk(QueueIndex(ledger), Online(), clock=lambda: NOW, summarize=lm.summarize)
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm), desk)
    chat.visitor_turn(
        "A",
        "Please change the delivery address on order 4417 to 12 Harbour Street",
        leg_id=CHAT_LEG,
    )
    chat.visitor_turn("A", "can I talk to a real person", leg_id=CHAT_LEG)
    events = list(ledger.read("A"))
    written = [e for e in events if e.type == "HandoffSummaryWritten"]
    assert len(written) == 1
    text = written[0].data.model_dump()["text"]
    assert written[0].data.model_dump()["generator"] == "offline"
    assert "4417" in text
    assert "Harbour Street" in text
    assert "Not verified." in text
    assert _summary(fold_human(events), events) == text
    assert "talk to a real person" not in text  # why the operator is here, not an open question
    # Replayed up to the request, the same stream gives the same summary (offline).
    asked = next(e.position for e in events if e.type == "HumanRequested")
    context = build_context([e for e in events if e.position < asked])
    assert lm.offline.handoff_summary(context, reason="explicit_request") == text
